package supervisor

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/cuda/cudatest"
)

const openToken = "open-test-token-0123456789"

// tokenFile writes openToken to a file of the given mode.
func tokenFile(t *testing.T, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(path, []byte(openToken+"\n"), 0o600))
	require.NoError(t, os.Chmod(path, mode))
	return path
}

func newSim(t *testing.T) *cuda.Sim {
	t.Helper()
	sim, err := cuda.NewSim(cuda.SimConfig{Capacity: 16 * MiB})
	require.NoError(t, err)
	return sim
}

func TestOpenChainsItsLogWithTheTokensKeyAndClosesItOnStop(t *testing.T) {
	ctx := context.Background()
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	rt, err := Open(ctx, OpenConfig{TokenFile: tokenFile(t, 0o600), AuditLog: logPath,
		Config: Config{Devices: []cuda.Device{newSim(t)}, WorkerID: "w1", ChunkSize: 64 * KiB}})
	require.NoError(t, err)
	data := cudatest.Pattern(1, 128*KiB)
	s, err := rt.Seal(ctx, SealRequest{ID: "s", Data: bytes.NewReader(data), Size: int64(len(data))})
	require.NoError(t, err)
	require.NoError(t, rt.Verify(ctx, s))
	require.NoError(t, rt.Stop(ctx))

	keys, err := DeriveKeys([]byte(openToken), "w1")
	require.NoError(t, err)
	defer keys.Zero()
	f, err := os.Open(logPath)
	require.NoError(t, err)
	defer f.Close()
	report, err := audit.Verify(f, keys.Audit)
	require.NoError(t, err, "the log is chained with the audit key of the token and worker ID")
	assert.GreaterOrEqual(t, report.Records, 4)

	again, err := audit.Open(logPath, audit.LogConfig{Key: keys.Audit, WorkerID: "w1"})
	require.NoError(t, err, "the runtime closed its log when it stopped, so it can be opened again")
	assert.Equal(t, uint64(report.Records), again.Stats().LastSeq)
	require.NoError(t, again.Close())
	assert.Contains(t, rt.cfg.Key.String(), "zeroed", "the runtime zeroes the key Open derived")
}

func TestOpenWithoutAnAuditLog(t *testing.T) {
	ctx := context.Background()
	rt, err := Open(ctx, OpenConfig{TokenFile: tokenFile(t, 0o400), Config: Config{Devices: []cuda.Device{newSim(t)}, WorkerID: "w1"}})
	require.NoError(t, err)
	data := cudatest.Pattern(2, 64*KiB)
	_, err = rt.Seal(ctx, SealRequest{ID: "s", Data: bytes.NewReader(data), Size: int64(len(data))})
	require.NoError(t, err)
	require.NoError(t, rt.Stop(ctx))
}

func TestOpenRefusesBeforeTouchingADevice(t *testing.T) {
	otherLog := filepath.Join(t.TempDir(), "audit.jsonl")
	other, err := DeriveKeys([]byte("another-token-0123456789"), "w1")
	require.NoError(t, err)
	l, err := audit.Open(otherLog, audit.LogConfig{Key: other.Audit})
	require.NoError(t, err)
	require.NoError(t, l.Record(context.Background(), audit.Record{Event: "Probe", Severity: audit.SeverityInfo}))
	require.NoError(t, l.Close())
	other.Zero()
	key, err := DeriveKeys([]byte(openToken), "w1")
	require.NoError(t, err)

	tests := []struct {
		name string
		edit func(t *testing.T, oc *OpenConfig)
		want error
	}{
		{name: "no token file", edit: func(_ *testing.T, oc *OpenConfig) { oc.TokenFile = "" }, want: ErrConfig},
		{name: "token file others may read", edit: func(t *testing.T, oc *OpenConfig) { oc.TokenFile = tokenFile(t, 0o604) }, want: ErrConfig},
		{name: "missing token file", edit: func(t *testing.T, oc *OpenConfig) { oc.TokenFile = filepath.Join(t.TempDir(), "none") }, want: ErrConfig},
		{name: "no worker ID", edit: func(_ *testing.T, oc *OpenConfig) { oc.Config.WorkerID = "" }, want: ErrConfig},
		{name: "a key given", edit: func(_ *testing.T, oc *OpenConfig) { oc.Config.Key = key.Seal }, want: ErrConfig},
		{name: "a log another token wrote", edit: func(_ *testing.T, oc *OpenConfig) { oc.AuditLog = otherLog }, want: ErrIntegrityViolation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSim(t)
			oc := OpenConfig{TokenFile: tokenFile(t, 0o600), Config: Config{Devices: []cuda.Device{sim}, WorkerID: "w1"}}
			tt.edit(t, &oc)
			rt, err := Open(context.Background(), oc)
			assert.Nil(t, rt)
			assert.ErrorIs(t, err, tt.want)
			assert.NotContains(t, err.Error(), openToken)
			_, err = sim.Allocate(4096)
			assert.Error(t, err, "Open closed the devices it was given")
		})
	}
}

func TestScrubbingIsOnByDefault(t *testing.T) {
	for _, tt := range []struct {
		name      string
		cfg       Config
		verifiers int
	}{
		{name: "default", verifiers: 1},
		{name: "NoScrub", cfg: Config{NoScrub: true}, verifiers: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key, err := DeriveKeys([]byte(openToken), "w1")
			require.NoError(t, err)
			defer key.Zero()
			cfg := tt.cfg
			cfg.Devices, cfg.Key, cfg.WorkerID, cfg.Audit = []cuda.Device{newSim(t)}, key.Seal, "w1", audit.NewMemory()
			rt, err := Start(context.Background(), cfg)
			require.NoError(t, err)
			defer func() { require.NoError(t, rt.Stop(context.Background())) }()
			assert.Len(t, rt.verifiers, tt.verifiers)
			if tt.verifiers > 0 {
				assert.Equal(t, DefaultVerifyInterval, rt.cfg.VerifyInterval)
			}
		})
	}
}

func TestAnOpenedRuntimeFailStopsWhenItsLogIsRemovedWhileIdle(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	rt, err := Open(context.Background(), OpenConfig{TokenFile: tokenFile(t, 0o600), AuditLog: logPath,
		Config: Config{Devices: []cuda.Device{newSim(t)}, WorkerID: "w1"}})
	require.NoError(t, err)
	require.NoError(t, os.Remove(logPath))
	select {
	case <-rt.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the runtime did not fail-stop when its audit log was removed")
	}
	assert.ErrorIs(t, rt.Err(), ErrLogFailed)
	assert.ErrorIs(t, rt.Stop(context.Background()), ErrLogFailed, "Stop reports the log's failure")
}
