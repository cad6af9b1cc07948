package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
)

// writeLogWithBackend writes an intact one-record audit log whose
// WorkerStarted names backend (none when empty), with a token kept beside
// it as a token-less simulated run keeps one. It returns the log's path,
// the token's, and the key's fingerprint.
func writeLogWithBackend(t *testing.T, backend string) (logPath, tokenAt, fingerprint string) {
	t.Helper()
	dir := t.TempDir()
	logPath = filepath.Join(dir, "vramseal-audit.jsonl")
	tokenAt = simTokenPath(logPath)
	token := ephemeralToken()
	require.NoError(t, writeNewTokenFile(tokenAt, token))
	key, err := audit.DeriveKey(token, "w1")
	require.NoError(t, err)
	t.Cleanup(key.Zero)
	fields := map[string]any{"key_fingerprint": key.Fingerprint()}
	if backend != "" {
		fields["backend"] = backend
	}
	log, err := audit.Open(logPath, audit.LogConfig{Key: key, WorkerID: "w1"})
	require.NoError(t, err)
	require.NoError(t, log.Record(context.Background(), audit.Record{Event: audit.EventWorkerStarted, Severity: audit.SeverityInfo, Fields: fields}))
	require.NoError(t, log.Close())
	return logPath, tokenAt, key.Fingerprint()
}

func TestAuditVerifyUsesTheTokenBesideALogOfSimulatedGPUsOnly(t *testing.T) {
	t.Setenv(tokenFileEnv, "")
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	for _, backend := range []string{backendCUDA, ""} {
		t.Run("backend "+backend, func(t *testing.T) {
			logPath, tokenAt, fp := writeLogWithBackend(t, backend)
			res := runVramseal(t, filepath.Dir(logPath), "audit", "verify", logPath)
			assert.Equal(t, exitUsage, res.code, res.stderr)
			assert.Contains(t, res.stderr, "the token beside it ("+tokenAt+") is not used")
			assert.Contains(t, res.stderr, "pass --token-file PATH, or set $"+tokenFileEnv)
			assert.Empty(t, res.stdout)

			res = runVramseal(t, filepath.Dir(logPath), "audit", "verify", logPath, "--token-file", tokenAt)
			assert.Equal(t, exitOK, res.code, "a token named on purpose is used: %s", res.stderr)
			assert.Contains(t, res.stdout, "token:      "+tokenAt+" (--token-file), key fingerprint "+fp)
		})
	}
	t.Run("backend sim", func(t *testing.T) {
		logPath, tokenAt, fp := writeLogWithBackend(t, backendSim)
		res := runVramseal(t, filepath.Dir(logPath), "audit", "verify", logPath)
		assert.Equal(t, exitOK, res.code, res.stderr)
		assert.Contains(t, res.stdout, "is intact")
		assert.Contains(t, res.stdout, "token:      "+tokenAt+" (kept beside the log by a run on simulated GPUs), key fingerprint "+fp)
	})
}

func TestAuditVerifyNamesItsTokenWhenALogIsNotIntact(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	logPath, tokenAt, fp := writeLogWithBackend(t, backendSim)
	data, err := os.ReadFile(logPath)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(logPath, append(data, []byte(`{"seq":2}`+"\n")...), 0o600))
	res := runVramseal(t, filepath.Dir(logPath), "audit", "verify", logPath, "--token-file", tokenAt)
	assert.Equal(t, exitFailure, res.code, res.stderr)
	assert.Contains(t, res.stderr, "NOT intact")
	assert.Contains(t, res.stderr, "checked with the token "+tokenAt+" (--token-file), key fingerprint "+fp)
}
