package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/gpuhealth"
	"github.com/vramseal/vramseal/internal/modeltest"
)

func TestDevicesListsSimulatedDevices(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	t.Run("json", func(t *testing.T) {
		res := runVramseal(t, t.TempDir(), "devices", "--backend", "sim", "--sim-devices", "3", "--sim-vram", "512MiB", "--json")
		require.Equal(t, exitOK, res.code, res.stderr)
		var list []deviceJSON
		require.NoError(t, json.Unmarshal([]byte(res.stdout), &list))
		require.Len(t, list, 3)
		uuids := map[string]bool{}
		for i, d := range list {
			assert.Equal(t, i, d.Index)
			assert.Equal(t, int64(512<<20), d.TotalMemoryBytes)
			assert.Equal(t, int64(512<<20), d.FreeMemoryBytes)
			assert.True(t, d.Simulated)
			assert.NotEmpty(t, d.Name)
			assert.Regexp(t, `^\d+\.\d+$`, d.ComputeCapability)
			uuids[d.UUID] = true
		}
		assert.Len(t, uuids, 3, "each device has its own UUID")
	})
	t.Run("table", func(t *testing.T) {
		res := runVramseal(t, t.TempDir(), "devices", "--backend", "sim", "--sim-devices", "2", "--sim-vram", "1GiB")
		require.Equal(t, exitOK, res.code, res.stderr)
		lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
		require.Len(t, lines, 3)
		assert.Regexp(t, `^INDEX\s+NAME\s+UUID\s+TOTAL\s+FREE\s+COMPUTE$`, lines[0])
		assert.Regexp(t, `^1\s+.*\s+1\.0 GiB\s+1\.0 GiB\s+\d+\.\d+$`, lines[2])
	})
	t.Run("bad flag", func(t *testing.T) {
		res := runVramseal(t, t.TempDir(), "devices", "--backend", "sim", "--sim-devices", "0")
		assert.Equal(t, exitUsage, res.code)
		assert.Contains(t, res.stderr, "--sim-devices 0: need at least 1")
	})
}

func TestDevicesAndRunSayWhenThereIsNoDriver(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	n, err := gpuhealth.OpenNVML()
	driver := !errors.Is(err, cuda.ErrNoDriver)
	if err == nil {
		require.NoError(t, n.Close())
	}
	list := runVramseal(t, t.TempDir(), "devices")
	cudaList := runVramseal(t, t.TempDir(), "devices", "--backend", "cuda")
	dir := t.TempDir()
	model, _ := modeltest.WriteRandomFile(t, dir, "m.bin", 1024)
	run := runVramseal(t, dir, "run", "--backend", "cuda", "--token-file", writeToken(t, dir), "--listen", "", "--duration", "1ms", model)
	if driver {
		assert.Equal(t, exitOK, list.code, list.stderr)
		assert.Equal(t, exitOK, cudaList.code, cudaList.stderr)
		assert.Equal(t, exitOK, run.code, run.stderr)
		return
	}
	assert.Equal(t, exitOK, list.code, "auto falls back to simulated devices: %s", list.stderr)
	assert.Equal(t, "no NVIDIA driver found: these are the simulated devices \"vramseal run\" would use\n", list.stderr)
	lines := strings.Split(strings.TrimSpace(list.stdout), "\n")
	require.Len(t, lines, 3, "a header and the two simulated devices a run gets by default")
	assert.Regexp(t, `^0\s+`+cuda.DefaultSimName+` 0\s`, lines[1])
	assert.Equal(t, exitFailure, cudaList.code)
	assert.Equal(t, "vramseal: --backend cuda: NVIDIA driver not found: libnvidia-ml.so.1 could not be loaded; install the NVIDIA driver, or list simulated devices with --backend sim\n", cudaList.stderr)
	assert.Equal(t, exitUsage, run.code)
	assert.Contains(t, run.stderr, "--backend cuda: NVIDIA driver not found")
	assert.Contains(t, run.stderr, "use --backend sim")
}

func TestVersionPrintsVersionCommitAndGo(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	res := runVramseal(t, t.TempDir(), "version")
	require.Equal(t, exitOK, res.code, res.stderr)
	assert.Regexp(t, `^vramseal \S+\ncommit: \S+.*\ngo: go\S+ \w+/\w+\n$`, res.stdout)
	flag := runVramseal(t, t.TempDir(), "--version")
	require.Equal(t, exitOK, flag.code, flag.stderr)
	assert.Equal(t, res.stdout, flag.stdout, "--version prints what version does")
}

func TestUsageErrorsBeforeAnyCommandRunsExitTwo(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"seal"}, `unknown command "seal"`},
		{"unknown flag", []string{"run", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{"bad log format", []string{"version", "--log-format", "xml"}, `"xml" is not one of text, json`},
		{"extra argument", []string{"version", "now"}, `unknown command "now"`},
		{"audit verify without a file", []string{"audit", "verify"}, "audit verify checks one log file, got 0 arguments; use: vramseal audit verify FILE"},
		{"unknown audit command", []string{"audit", "check"}, `unknown command "check" for "vramseal audit"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runVramseal(t, t.TempDir(), tt.args...)
			assert.Equal(t, exitUsage, res.code, res.stderr)
			assert.Contains(t, res.stderr, tt.want)
		})
	}
}

func TestHelpTeachesWithExamples(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	for _, args := range [][]string{{"--help"}, {"run", "--help"}, {"devices", "--help"}, {"audit", "--help"}, {"audit", "verify", "--help"}, {"version", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			res := runVramseal(t, t.TempDir(), args...)
			require.Equal(t, exitOK, res.code, res.stderr)
			assert.Contains(t, res.stdout, "Examples:")
		})
	}
}

func TestRunHelpExplainsTheGPUFlags(t *testing.T) {
	p := runInProcess(t, newMockMachine(t, 1<<20, 0), "run", "--help")
	require.Equal(t, exitOK, p.code, "%v", p.err)
	help := p.stdout.String()
	for _, want := range []string{
		"--on-contention ignore|warn|evict", "(default warn)",
		"--ignore-xids XID,...|none", "(default 13,31,43,45,68,109)",
		"--contention-interval duration", "(default 5s)",
		"fail-stops the worker", "pending retirement", "host's PID namespace",
	} {
		assert.Contains(t, help, want)
	}
}

// sealedAuditLog runs a short worker and returns its audit log and token.
func sealedAuditLog(t *testing.T) (dir, logPath, token string) {
	t.Helper()
	dir = t.TempDir()
	token = writeToken(t, dir)
	file, _ := modeltest.WriteRandomFile(t, dir, "w.bin", 256<<10)
	res := runVramseal(t, dir, append(smallRunFlags(dir, token), "--duration", "1ms", "--listen", "", file)...)
	require.Equal(t, exitOK, res.code, res.stderr)
	return dir, filepath.Join(dir, "audit.jsonl"), token
}

func TestAuditVerifyNamesTheFirstTamperedLine(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir, logPath, token := sealedAuditLog(t)
	original, err := os.ReadFile(logPath)
	require.NoError(t, err)
	lines := bytes.SplitAfter(original, []byte("\n"))
	require.Greater(t, len(lines), 4)

	tests := []struct {
		name     string
		tamper   func() []byte
		wantLine string
	}{
		{
			name: "edited",
			tamper: func() []byte {
				return bytes.Replace(original, []byte(`"size":262144`), []byte(`"size":262145`), 1)
			},
			wantLine: "is NOT intact: line ",
		},
		{
			name:     "line deleted",
			tamper:   func() []byte { return bytes.Join(append(append([][]byte{}, lines[:2]...), lines[3:]...), nil) },
			wantLine: "is NOT intact: line 3: missing",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tampered := filepath.Join(t.TempDir(), "tampered.jsonl")
			require.NoError(t, os.WriteFile(tampered, tt.tamper(), 0o600))
			res := runVramseal(t, dir, "audit", "verify", tampered, "--token-file", token)
			assert.Equal(t, exitFailure, res.code, res.stderr)
			assert.Contains(t, res.stderr, tt.wantLine)
			assert.Empty(t, res.stdout)
		})
	}
}

func TestAuditVerifyTellsAWrongKeyFromTamperingAndReadsWhatItCan(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir, logPath, token := sealedAuditLog(t)
	otherToken := filepath.Join(t.TempDir(), "other.token")
	require.NoError(t, os.WriteFile(otherToken, []byte("another-token-0123456789"), 0o600))
	original, err := os.ReadFile(logPath)
	require.NoError(t, err)
	withNewline := filepath.Join(t.TempDir(), "newline.jsonl")
	require.NoError(t, os.WriteFile(withNewline, append(bytes.Clone(original), '\n'), 0o600))
	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	records := bytes.Count(original, []byte("\n"))

	tests := []struct {
		name     string
		args     []string
		env      []string
		wantCode int
		want     []string
	}{
		{"intact", []string{logPath, "--token-file", token}, nil, exitOK,
			[]string{fmt.Sprintf("is intact: %d records by worker \"e2e-worker\"", records), "critical:   none", "workers:    e2e-worker", "graceful"}},
		{"token from the environment", []string{logPath}, []string{tokenFileEnv + "=" + token}, exitOK, []string{"is intact"}},
		{"trailing newline", []string{withNewline, "--token-file", token}, nil, exitOK, []string{fmt.Sprintf("is intact: %d records", records)}},
		{"wrong token", []string{logPath, "--token-file", otherToken}, nil, exitWrongKey,
			[]string{"cannot be checked with this key: it was written with the token of fingerprint", "pass --token-file (or set $VRAMSEAL_TOKEN_FILE)"}},
		{"wrong worker", []string{logPath, "--token-file", token, "--worker-id", "someone-else"}, nil, exitWrongKey,
			[]string{`it was written by worker e2e-worker, not "someone-else"; pass --worker-id e2e-worker`}},
		{"empty log", []string{empty, "--token-file", token}, nil, exitUsage, []string{"is empty: there is no record to verify"}},
		{"missing log", []string{filepath.Join(dir, "nope.jsonl"), "--token-file", token}, nil, exitUsage, []string{"does not exist"}},
		{"no token", []string{logPath}, nil, exitUsage, []string{"pass --token-file PATH, or set $VRAMSEAL_TOKEN_FILE"}},
		{"no file", nil, nil, exitUsage, []string{"audit verify checks one log file, got 0 arguments; use: vramseal audit verify FILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runVramsealEnv(t, dir, tt.env, append([]string{"audit", "verify"}, tt.args...)...)
			assert.Equal(t, tt.wantCode, res.code, res.stderr)
			for _, want := range tt.want {
				assert.Contains(t, res.stdout+res.stderr, want)
			}
			if tt.wantCode != exitOK {
				assert.Empty(t, res.stdout)
				assert.NotContains(t, res.stderr, "invalid configuration")
			}
		})
	}
}

func TestAuditVerifySumsUpALogWithAFailStop(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	file, _ := modeltest.WriteRandomFile(t, dir, "layer0.bin", 1<<20)
	run := runVramseal(t, dir, append(smallRunFlags(dir, token), "--sim-fault", "bitflip@0s", "--listen", "", file)...)
	require.Equal(t, exitFailStop, run.code, run.stderr)

	res := runVramseal(t, dir, "audit", "verify", filepath.Join(dir, "audit.jsonl"), "--token-file", token)
	require.Equal(t, exitOK, res.code, "the log of a fail-stop is intact: %s", res.stderr)
	assert.Contains(t, res.stdout, "critical:   2 (SealVerificationFailed 1, WorkerStopped 1)")
	assert.Regexp(t, `last stop:  \S+, fail-stop: shard "layer0.bin" on device \d: chunk \d+ \(bytes \d+-\d+\) does not match`, res.stdout)
}
