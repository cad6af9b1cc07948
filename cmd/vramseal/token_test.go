package main

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/secret"
	"github.com/vramseal/vramseal/supervisor"
)

func TestReadTokenAcceptsAPrivateFileAndCutsOneNewline(t *testing.T) {
	tests := []struct {
		name, content, want string
		mode                os.FileMode
	}{
		{name: "raw", content: "0123456789abcdef", want: "0123456789abcdef", mode: 0o600},
		{name: "newline", content: "0123456789abcdef\n", want: "0123456789abcdef", mode: 0o600},
		{name: "CRLF", content: "0123456789abcdef\r\n", want: "0123456789abcdef", mode: 0o400},
		{name: "only one newline cut", content: "0123456789abcdef\n\n", want: "0123456789abcdef\n", mode: 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			require.NoError(t, os.WriteFile(path, []byte(tt.content), tt.mode))
			got, err := readToken(path)
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
}

func TestReadTokenRefusesWithTheFix(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, path string)
		wantErrs []string
	}{
		{
			name:     "missing",
			setup:    func(*testing.T, string) {},
			wantErrs: []string{"does not exist", "head -c 32 /dev/urandom"},
		},
		{
			name: "group-readable",
			setup: func(t *testing.T, path string) {
				require.NoError(t, os.WriteFile(path, []byte("0123456789abcdef"), 0o600))
				require.NoError(t, os.Chmod(path, 0o640))
			},
			wantErrs: []string{"mode 0640", "chmod 600 "},
		},
		{
			name: "world-readable",
			setup: func(t *testing.T, path string) {
				require.NoError(t, os.WriteFile(path, []byte("0123456789abcdef"), 0o600))
				require.NoError(t, os.Chmod(path, 0o604))
			},
			wantErrs: []string{"mode 0604", "chmod 600 "},
		},
		{
			name: "short after the newline is cut",
			setup: func(t *testing.T, path string) {
				require.NoError(t, os.WriteFile(path, []byte("0123456789abcde\n"), 0o600))
			},
			wantErrs: []string{"15 bytes, too short", "at least 16"},
		},
		{
			name: "too long",
			setup: func(t *testing.T, path string) {
				require.NoError(t, os.WriteFile(path, make([]byte, secret.MaxTokenFileBytes+1), 0o600))
			},
			wantErrs: []string{"longer than 4096 bytes"},
		},
		{
			name:     "a directory",
			setup:    func(t *testing.T, path string) { require.NoError(t, os.Mkdir(path, 0o700)) },
			wantErrs: []string{"is not a regular file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			tt.setup(t, path)
			token, err := readToken(path)
			require.Error(t, err)
			assert.Nil(t, token)
			assert.Equal(t, exitUsage, exitCodeOf(err, true))
			for _, want := range tt.wantErrs {
				assert.Contains(t, err.Error(), want)
			}
			assert.Contains(t, err.Error(), path, "the message names the file")
		})
	}
}

func TestTokenPathPrefersTheFlagThenTheEnvironmentThenSystemd(t *testing.T) {
	creds := t.TempDir()
	credential := filepath.Join(creds, credentialName)
	tests := []struct {
		name, flag, env, credsDir string
		credentialExists          bool
		want                      string
	}{
		{name: "flag", flag: "/f", env: "/e", credsDir: creds, credentialExists: true, want: "/f"},
		{name: "environment", env: "/e", credsDir: creds, credentialExists: true, want: "/e"},
		{name: "systemd credential", credsDir: creds, credentialExists: true, want: credential},
		{name: "credentials directory without the token", credsDir: creds, want: ""},
		{name: "nothing", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(tokenFileEnv, tt.env)
			t.Setenv("CREDENTIALS_DIRECTORY", tt.credsDir)
			os.Remove(credential)
			if tt.credentialExists {
				require.NoError(t, os.WriteFile(credential, []byte("0123456789abcdef"), 0o400))
			}
			assert.Equal(t, tt.want, tokenPath(tt.flag))
		})
	}
}

func TestDeriveKeysZeroesTheTokenAndKeysZeroOnRequest(t *testing.T) {
	token := []byte("0123456789abcdef0123")
	keys, err := deriveKeys(token, "w1")
	require.NoError(t, err)
	assert.Equal(t, make([]byte, len(token)), token, "token bytes are zeroed once the keys are derived")
	assert.Len(t, keys.Fingerprint(), 6)
	assert.Equal(t, "w1", keys.Audit.WorkerID())

	keys.Zero()
	assert.Contains(t, keys.Seal.String(), "zeroed")
}

func TestEphemeralTokensAreLongEnoughAndDiffer(t *testing.T) {
	a, b := ephemeralToken(), ephemeralToken()
	assert.GreaterOrEqual(t, len(a), 16)
	assert.NotEqual(t, a, b)
}

// TestSimTokenReadsBackTheTokenItMade defends a log continued by the next run
// on simulated GPUs: the token kept beside the log must derive the key the
// run that made it used. Raw random bytes ended in a newline one time in
// 256, which the token file reader cuts.
func TestSimTokenReadsBackTheTokenItMade(t *testing.T) {
	for range 4096 {
		token := ephemeralToken()
		require.Len(t, token, 2*ephemeralTokenBytes)
		_, err := hex.DecodeString(string(token))
		require.NoError(t, err, "a made token is hex text, which a token file keeps as it is: %q", token)
	}
	logPath := filepath.Join(t.TempDir(), auditLogName)
	made, path, created, err := simToken(logPath)
	require.NoError(t, err)
	require.True(t, created)
	again, againPath, created, err := simToken(logPath)
	require.NoError(t, err)
	assert.False(t, created, "the second run reads the kept token")
	assert.Equal(t, path, againPath)
	assert.Equal(t, made, again, "the kept token reads back as the one the first run used")
}

// TestWorkerKeysPrintNoSecret covers the CLI's one key holder, which the
// secret package's walk over exported types cannot reach.
func TestWorkerKeysPrintNoSecret(t *testing.T) {
	token := []byte("0123456789abcdef0123")
	var leaks []string
	for _, purpose := range []string{"vramseal/v1/shard-record-hmac-sha256", "vramseal/v1/audit-log"} {
		b, err := hkdf.Key(sha256.New, token, nil, purpose+"\x00w1", 32)
		require.NoError(t, err)
		leaks = append(leaks, hex.EncodeToString(b[:8]), strings.ToUpper(hex.EncodeToString(b[:8])), string(b[:8]), strings.Trim(fmt.Sprint(b[:6]), "[]"))
	}
	keys, err := deriveKeys(bytes.Clone(token), "w1")
	require.NoError(t, err)
	defer keys.Zero()
	for _, v := range []any{keys, *keys, struct{ K *supervisor.Keys }{keys}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
			out := fmt.Sprintf(verb, v)
			for _, leak := range append(leaks, string(token)) {
				assert.NotContains(t, out, leak, "%s of %T", verb, v)
			}
		}
		var logged bytes.Buffer
		slog.New(slog.NewTextHandler(&logged, nil)).Info("keys", "k", v, "seal", keys.Seal, "audit", keys.Audit)
		for _, leak := range leaks {
			assert.NotContains(t, logged.String(), leak)
		}
	}
}
