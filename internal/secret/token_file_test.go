package secret_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/secret"
	"github.com/vramseal/vramseal/messages"
)

func TestReadTokenFileCutsOneNewline(t *testing.T) {
	for content, want := range map[string]string{
		"0123456789abcdef":       "0123456789abcdef",
		"0123456789abcdef\n":     "0123456789abcdef",
		"0123456789abcdef\r\n":   "0123456789abcdef",
		"0123456789abcdef\n\n":   "0123456789abcdef\n",
		"0123456789abcdef\r\r\n": "0123456789abcdef\r",
	} {
		path := filepath.Join(t.TempDir(), "token")
		require.NoError(t, os.WriteFile(path, []byte(content), 0o400))
		got, err := secret.ReadTokenFile(path)
		require.NoError(t, err, "%q", content)
		assert.Equal(t, want, string(got), "%q", content)
	}
}

func TestReadTokenFileRefusalsMatchErrConfigAndShowNoToken(t *testing.T) {
	const token = "0123456789abcdef-secret"
	tests := []struct {
		name     string
		setup    func(t *testing.T, path string)
		want     string
		notExist bool
	}{
		{name: "missing", setup: func(*testing.T, string) {}, want: "does not exist; make one with", notExist: true},
		{name: "group-readable", setup: func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte(token), 0o600))
			require.NoError(t, os.Chmod(path, 0o640))
		}, want: "restrict it: chmod 600"},
		{name: "too short", setup: func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte(token[:secret.MinTokenLen-1]+"\n"), 0o600))
		}, want: "15 bytes, too short"},
		{name: "too long", setup: func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte(token+string(make([]byte, secret.MaxTokenFileBytes))), 0o600))
		}, want: "longer than 4096 bytes"},
		{name: "a directory", setup: func(t *testing.T, path string) { require.NoError(t, os.Mkdir(path, 0o700)) }, want: "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			tt.setup(t, path)
			got, err := secret.ReadTokenFile(path)
			require.Error(t, err)
			assert.Nil(t, got)
			assert.ErrorIs(t, err, messages.ErrConfig)
			assert.Equal(t, tt.notExist, errors.Is(err, fs.ErrNotExist))
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), path, "the message names the file")
			assert.NotContains(t, err.Error(), token[:8], "no byte of the token")
		})
	}
}
