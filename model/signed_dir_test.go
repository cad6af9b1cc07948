package model_test

import (
	"crypto/elliptic"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/modelsigtest"
	"github.com/vramseal/vramseal/internal/modeltest"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/model"
)

// signedIdentity signs files (by name, relative to the model directory) and
// returns the verified identity, with the signature written outside dir.
func signedIdentity(t *testing.T, files map[string][]byte, allowSymlinks bool, ignore ...string) *model.Identity {
	t.Helper()
	key := modelsigtest.NewKey(elliptic.P256())
	pub, err := model.ParsePublicKey(modelsigtest.PublicPEM(key))
	require.NoError(t, err)
	st := modelsigtest.Model{Name: "tiny-llm", Method: "files", Files: files, IgnorePaths: ignore, AllowSymlinks: allowSymlinks}
	sig := filepath.Join(t.TempDir(), "model.sig")
	m, err := model.VerifyModelSignature(modelsigtest.Sign(key, st), pub, sig)
	require.NoError(t, err)
	id := &model.Identity{}
	id.AddSignature("--signature "+sig, sig, m, true)
	return id
}

// withIndex is files and the directory's index, as signed.
func withIndex(t *testing.T, dir string, files map[string][]byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for n, b := range files {
		out[n] = b
	}
	index, err := os.ReadFile(filepath.Join(dir, model.SafetensorsIndexName))
	require.NoError(t, err)
	out[model.SafetensorsIndexName] = index
	return out
}

func TestAttachRefusesUnsignedFilesInASignedDirectory(t *testing.T) {
	for _, extra := range []string{"modeling_evil.py", "sub/tokenizer.json", "sub/extra.safetensors"} {
		t.Run(extra, func(t *testing.T) {
			dir, files := modeltest.WriteDir(t, t.TempDir())
			id := signedIdentity(t, withIndex(t, dir, files), false)
			path := filepath.Join(dir, filepath.FromSlash(extra))
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
			require.NoError(t, os.WriteFile(path, []byte("import os"), 0o600))
			d, srcs := openDir(t, dir)

			err := id.Attach(srcs, d, model.AttachOptions{})
			require.ErrorIs(t, err, messages.ErrModelRejected)
			assert.Contains(t, err.Error(), `"`+extra+`"`)
			assert.Contains(t, err.Error(), "--allow-unsigned-files")

			// Let through by name, and named in the record.
			id = signedIdentity(t, withIndex(t, dir, files), false)
			require.NoError(t, id.Attach(srcs, d, model.AttachOptions{AllowUnsigned: true}))
			assert.Equal(t, []string{extra}, model.Uncovered(id))
		})
	}
	t.Run("git paths and ignored paths are left out", func(t *testing.T) {
		dir, files := modeltest.WriteDir(t, t.TempDir())
		for _, p := range []string{".git/HEAD", ".gitattributes", "notes/a.txt"} {
			path := filepath.Join(dir, filepath.FromSlash(p))
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
			require.NoError(t, os.WriteFile(path, []byte("x"), 0o600))
		}
		id := signedIdentity(t, withIndex(t, dir, files), false, "notes")
		d, srcs := openDir(t, dir)
		require.NoError(t, id.Attach(srcs, d, model.AttachOptions{}))
		assert.Empty(t, model.Uncovered(id))
	})
}

func TestAttachRefusesASymlinkTheSignatureDoesNotAllow(t *testing.T) {
	dir, files := modeltest.WriteDir(t, t.TempDir())
	signed := withIndex(t, dir, files)
	signed["config.json"] = []byte(`{"x":1}`)
	target := filepath.Join(t.TempDir(), "config.json")
	require.NoError(t, os.WriteFile(target, signed["config.json"], 0o600))
	require.NoError(t, os.Symlink(target, filepath.Join(dir, "config.json")))
	d, srcs := openDir(t, dir)

	err := signedIdentity(t, signed, false).Attach(srcs, d, model.AttachOptions{})
	require.ErrorIs(t, err, messages.ErrModelRejected)
	assert.Contains(t, err.Error(), `"config.json" is a symbolic link`)

	assert.NoError(t, signedIdentity(t, signed, true).Attach(srcs, d, model.AttachOptions{}), "allow_symlinks: true")
}
