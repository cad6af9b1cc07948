package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/modeltest"
)

// refusalBound is how soon a FIFO must be refused. An open that blocked
// would never return: the bound only has to tell that from a slow start.
const refusalBound = 5 * time.Second

// TestFIFOsAreRefusedAtOnce gives a FIFO where a file belongs; opening one
// for reading would block until a writer came, past SIGTERM.
func TestFIFOsAreRefusedAtOnce(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	tests := []struct {
		name string
		args func(dir, token, model, fifo string) []string
		want string
	}{
		{"token file", func(dir, _, model, fifo string) []string {
			return []string{"run", "--backend", "sim", "--listen", "", "--token-file", fifo, "--audit-log", filepath.Join(dir, "a.jsonl"), model}
		}, "token file %s is not a regular file"},
		{"model file", func(dir, token, _, fifo string) []string {
			return []string{"run", "--backend", "sim", "--listen", "", "--token-file", token, "--audit-log", filepath.Join(dir, "a.jsonl"), fifo}
		}, "model file %s is not a regular file"},
		{"audit log", func(_, token, model, fifo string) []string {
			return []string{"run", "--backend", "sim", "--listen", "", "--token-file", token, "--audit-log", fifo, model}
		}, "audit log %s is not a regular file"},
		{"audit verify's log", func(_, token, _, fifo string) []string {
			return []string{"audit", "verify", fifo, "--token-file", token}
		}, "audit log %s is not a regular file"},
		{"digest list", func(dir, token, model, fifo string) []string {
			return []string{"run", "--backend", "sim", "--listen", "", "--token-file", token, "--audit-log", filepath.Join(dir, "a.jsonl"), "--sha256sums", fifo, model}
		}, "--sha256sums %s cannot be read (not a regular file)"},
		{"public key", func(dir, token, model, fifo string) []string {
			return []string{"run", "--backend", "sim", "--listen", "", "--token-file", token, "--audit-log", filepath.Join(dir, "a.jsonl"),
				"--signature", filepath.Join(dir, "model.sig"), "--public-key", fifo, model}
		}, "--public-key %s cannot be read (not a regular file)"},
		{"signature", func(dir, token, model, fifo string) []string {
			return []string{"run", "--backend", "sim", "--listen", "", "--token-file", token, "--audit-log", filepath.Join(dir, "a.jsonl"),
				"--signature", fifo, "--public-key", writePublicKey(t, dir), model}
		}, "--signature %s cannot be read (not a regular file)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fifo := filepath.Join(dir, "fifo")
			require.NoError(t, syscall.Mkfifo(fifo, 0o600))
			model, _ := modeltest.WriteRandomFile(t, dir, "model.bin", 64<<10)
			start := time.Now()
			res := runVramseal(t, dir, tt.args(dir, writeToken(t, dir), model, fifo)...)
			elapsed := time.Since(start)

			assert.Equal(t, exitUsage, res.code, "stderr:\n%s", res.stderr)
			assert.Contains(t, lastLine(res.stderr), fmt.Sprintf(tt.want, fifo))
			assert.Less(t, elapsed, refusalBound)
			t.Logf("refused in %s (loaded machine)", elapsed.Round(time.Millisecond))
		})
	}
}

// writePublicKey writes a fresh P-256 public key in PEM to dir and returns
// its path.
func writePublicKey(t *testing.T, dir string) string {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	require.NoError(t, err)
	path := filepath.Join(dir, "key.pub")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600))
	return path
}
