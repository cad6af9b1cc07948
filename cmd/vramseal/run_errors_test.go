package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/modeltest"
)

func TestRunRefusesBadInputWithOneLineThatNamesTheFix(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	type setup struct {
		dir, token, model string // a fresh dir, a good token, a good 1 MiB model file
	}
	tests := []struct {
		name       string
		args       func(t *testing.T, s setup) []string
		wantInLine []string
		skipAsRoot bool
	}{
		{
			name:       "missing file",
			args:       func(_ *testing.T, s setup) []string { return []string{filepath.Join(s.dir, "nope.bin")} },
			wantInLine: []string{"nope.bin does not exist", "check the path"},
		},
		{
			name:       "a directory without safetensors files",
			args:       func(_ *testing.T, s setup) []string { return []string{s.dir} },
			wantInLine: []string{"holds no *.safetensors files", "pass the directory that holds the weights"},
		},
		{
			name:       "a directory among files",
			args:       func(_ *testing.T, s setup) []string { return []string{s.model, s.dir} },
			wantInLine: []string{"is a directory", "pass the files in it"},
		},
		{
			name: "unreadable file",
			args: func(t *testing.T, s setup) []string {
				require.NoError(t, os.Chmod(s.model, 0o000))
				return []string{s.model}
			},
			wantInLine: []string{"cannot be read", "chmod u+r"},
			skipAsRoot: true,
		},
		{
			name: "empty file",
			args: func(t *testing.T, s setup) []string {
				path := filepath.Join(s.dir, "empty.bin")
				require.NoError(t, os.WriteFile(path, nil, 0o600))
				return []string{path}
			},
			wantInLine: []string{"empty.bin is empty", "holds the shard's weights"},
		},
		{
			name: "file larger than every device",
			args: func(t *testing.T, s setup) []string {
				big, _ := modeltest.WriteRandomFile(t, s.dir, "big.bin", 3<<20)
				return []string{"--sim-vram", "2MiB", big}
			},
			wantInLine: []string{"big.bin is 3.0 MiB but the largest device has 2.0 MiB available", "--sim-vram"},
		},
		{
			name: "files that fit alone but not together",
			args: func(t *testing.T, s setup) []string {
				a, _ := modeltest.WriteRandomFile(t, s.dir, "a.bin", 3<<20)
				b, _ := modeltest.WriteRandomFile(t, s.dir, "b.bin", 3<<20)
				return []string{"--sim-vram", "4MiB", "--sim-devices", "1", a, b}
			},
			wantInLine: []string{"b.bin (3.0 MiB) does not fit beside the shards before it", "--sim-vram"},
		},
		{
			name: "group-readable token file",
			args: func(t *testing.T, s setup) []string {
				require.NoError(t, os.Chmod(s.token, 0o640))
				return []string{s.model}
			},
			wantInLine: []string{"may be read by group or others (mode 0640)", "chmod 600 "},
		},
		{
			name: "short token",
			args: func(t *testing.T, s setup) []string {
				require.NoError(t, os.WriteFile(s.token, []byte("short-token\n"), 0o600))
				return []string{s.model}
			},
			wantInLine: []string{"is 11 bytes, too short", "at least 16", "head -c 32 /dev/urandom"},
		},
		{
			name:       "bad size string",
			args:       func(_ *testing.T, s setup) []string { return []string{"--sim-vram", "2G", s.model} },
			wantInLine: []string{`invalid argument "2G" for "--sim-vram"`, `unknown unit "G"`, "GiB"},
		},
		{
			name:       "unknown backend",
			args:       func(_ *testing.T, s setup) []string { return []string{"--backend", "tpu", s.model} },
			wantInLine: []string{`"tpu" is not one of auto, sim, cuda`},
		},
		{
			name: "listen address in use",
			args: func(t *testing.T, s setup) []string {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				t.Cleanup(func() { ln.Close() })
				return []string{"--listen", ln.Addr().String(), s.model}
			},
			wantInLine: []string{"address already in use", "--listen 127.0.0.1:0"},
		},
		{
			name: "sim-fault on real GPUs",
			args: func(_ *testing.T, s setup) []string {
				return []string{"--backend", "cuda", "--sim-fault", "bitflip@1s", s.model}
			},
			wantInLine: []string{"--sim-fault", "cannot run on real GPUs", "--backend sim"},
		},
		{
			// --serve is no longer refused on real GPUs: here, with no
			// driver, the backend is what fails.
			name: "serve on real GPUs without a driver",
			args: func(_ *testing.T, s setup) []string {
				return []string{"--backend", "cuda", "--serve", filepath.Join(s.dir, "share.sock"), s.model}
			},
			wantInLine: []string{"--backend cuda", "install the NVIDIA driver"},
		},
		{
			name:       "serve-allow-uid without serve",
			args:       func(_ *testing.T, s setup) []string { return []string{"--serve-allow-uid", "1000", s.model} },
			wantInLine: []string{"--serve-allow-uid", "need --serve PATH"},
		},
		{
			name:       "a path that is not a socket",
			args:       func(_ *testing.T, s setup) []string { return []string{"--serve", s.model, s.model} },
			wantInLine: []string{"not a socket", "choose another"},
		},
		{
			name:       "malformed sim-fault",
			args:       func(_ *testing.T, s setup) []string { return []string{"--sim-fault", "bitflip", s.model} },
			wantInLine: []string{"use bitflip@DURATION"},
		},
		{
			name:       "unknown contention policy",
			args:       func(_ *testing.T, s setup) []string { return []string{"--on-contention", "kill", s.model} },
			wantInLine: []string{`invalid argument "kill" for "--on-contention"`, "want ignore, warn or evict"},
		},
		{
			name:       "zero contention interval",
			args:       func(_ *testing.T, s setup) []string { return []string{"--contention-interval", "0s", s.model} },
			wantInLine: []string{"--contention-interval 0s must be positive"},
		},
		{
			name:       "malformed XID list",
			args:       func(_ *testing.T, s setup) []string { return []string{"--ignore-xids", "13,x", s.model} },
			wantInLine: []string{`invalid argument "13,x" for "--ignore-xids"`, "e.g. 13,31,43, or none"},
		},
		{
			name:       "chunk size not a power of two",
			args:       func(_ *testing.T, s setup) []string { return []string{"--chunk-size", "100KiB", s.model} },
			wantInLine: []string{"--chunk-size", "power of two"},
		},
		{
			name: "--id with two files",
			args: func(t *testing.T, s setup) []string {
				other, _ := modeltest.WriteRandomFile(t, s.dir, "other.bin", 1024)
				return []string{"--id", "x", s.model, other}
			},
			wantInLine: []string{"--id names one shard, but 2 model files were given"},
		},
		{
			name: "two files with the same shard ID",
			args: func(t *testing.T, s setup) []string {
				sub := filepath.Join(s.dir, "sub")
				require.NoError(t, os.Mkdir(sub, 0o700))
				twin, _ := modeltest.WriteRandomFile(t, sub, filepath.Base(s.model), 1024)
				return []string{s.model, twin}
			},
			wantInLine: []string{`both make shard ID "model.bin"`, "rename one"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skipAsRoot && os.Geteuid() == 0 {
				t.Skip("root reads every file")
			}
			dir := t.TempDir()
			model, _ := modeltest.WriteRandomFile(t, dir, "model.bin", 1<<20)
			s := setup{dir: dir, token: writeToken(t, dir), model: model}
			auditLog := filepath.Join(dir, "audit.jsonl")
			args := append([]string{"run", "--backend", "sim", "--sim-vram", "8MiB", "--chunk-size", "64KiB",
				"--listen", "127.0.0.1:0", "--log-format", "json", "--token-file", s.token, "--audit-log", auditLog},
				tt.args(t, s)...)

			res := runVramseal(t, dir, args...)

			require.Equal(t, exitUsage, res.code, "stderr:\n%s", res.stderr)
			var plain []string
			for _, line := range strings.Split(strings.TrimRight(res.stderr, "\n"), "\n") {
				var logLine map[string]any
				if json.Unmarshal([]byte(line), &logLine) != nil {
					plain = append(plain, line)
					continue
				}
				assert.NotEqual(t, "sealing", logLine["msg"], "nothing is sealed")
			}
			require.Len(t, plain, 1, "one error line, and log lines only; stderr:\n%s", res.stderr)
			assert.True(t, strings.HasPrefix(plain[0], "vramseal: "), plain[0])
			for _, want := range tt.wantInLine {
				assert.Contains(t, plain[0], want)
			}
			assert.NotContains(t, plain[0], "invalid input", "no internal error kinds")
			assert.NotContains(t, plain[0], "invalid configuration", "no internal error kinds")
			assert.NoFileExists(t, auditLog, "nothing is audited before the input checks out")
		})
	}
}
