package audit

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
)

// testToken is a worker token for tests.
var testToken = []byte("0123456789abcdef-test-token")

// testKeyBytes is what the audit key of workerID derived from testToken
// holds, computed here without the package's code.
func testKeyBytes(t testing.TB, workerID string) []byte {
	t.Helper()
	b, err := hkdf.Key(sha256.New, testToken, nil, "vramseal/v1/audit-log\x00"+workerID, sha256.Size)
	require.NoError(t, err)
	return b
}

// macUnder is HMAC-SHA256 of "probe" under k, to compare keys without
// reaching their bytes.
func macUnder(k *Key) []byte {
	m := k.NewMAC()
	m.Write([]byte("probe"))
	return m.Sum(nil)
}

// testKey derives the audit key for workerID from testToken.
func testKey(t testing.TB, workerID string) *Key {
	t.Helper()
	k, err := DeriveKey(testToken, workerID)
	require.NoError(t, err)
	return k
}

func TestDeriveKeyRefusesBadInput(t *testing.T) {
	tests := []struct {
		name     string
		token    []byte
		workerID string
	}{
		{"token too short", []byte("fifteen-bytes!!"), "w1"},
		{"no token", nil, "w1"},
		{"no worker", testToken, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := DeriveKey(tt.token, tt.workerID)
			assert.ErrorIs(t, err, messages.ErrConfig)
			assert.Nil(t, k)
		})
	}
}

func TestDeriveKeyUsesItsOwnLabel(t *testing.T) {
	want, err := hkdf.Key(sha256.New, testToken, nil, "vramseal/v1/audit-log\x00w1", sha256.Size)
	require.NoError(t, err)
	sealKey, err := hkdf.Key(sha256.New, testToken, nil, "vramseal/v1/shard-seal\x00w1", sha256.Size)
	require.NoError(t, err)

	k := testKey(t, "w1")
	assert.Equal(t, hmacOf(want), macUnder(k))
	assert.NotEqual(t, hmacOf(sealKey), macUnder(k), "the audit key must differ from the seal key")
	assert.Equal(t, "w1", k.WorkerID())
}

func TestDeriveKeySeparatesWorkersAndTokens(t *testing.T) {
	base := testKey(t, "w1")
	tests := []struct {
		name     string
		token    []byte
		workerID string
		same     bool
	}{
		{"same token and worker", testToken, "w1", true},
		{"other worker", testToken, "w2", false},
		{"other token", []byte("another-token-of-enough-bytes"), "w1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := DeriveKey(tt.token, tt.workerID)
			require.NoError(t, err)
			assert.Equal(t, tt.same, bytes.Equal(macUnder(base), macUnder(k)))
		})
	}
}

func TestKeyRevealsNothing(t *testing.T) {
	k := testKey(t, "w1")
	secret := testKeyBytes(t, "w1")
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		for name, v := range map[string]any{"key": k, "key value": *k, "struct holding a key": struct{ Key *Key }{k}} {
			t.Run(name+" "+format, func(t *testing.T) {
				assertNoSecret(t, fmt.Sprintf(format, v), secret)
			})
		}
	}
	assert.Equal(t, "audit.Key("+k.Fingerprint()+")", k.String())
	assert.Len(t, k.Fingerprint(), 6)
	assert.Equal(t, "audit.Key(nil)", (*Key)(nil).String())
	assert.Equal(t, "<nil>", fmt.Sprint((*Key)(nil)))
}

func TestZeroedKeyIsRefused(t *testing.T) {
	k := testKey(t, "w1")
	k.Zero()
	assert.Contains(t, k.String(), "zeroed")

	_, err := Verify(bytes.NewReader(nil), k)
	assert.ErrorIs(t, err, messages.ErrConfig)
	_, err = Verify(bytes.NewReader(nil), nil)
	assert.ErrorIs(t, err, messages.ErrConfig)
}

// hmacOf is HMAC-SHA256 of "probe" under key.
func hmacOf(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("probe"))
	return m.Sum(nil)
}

// assertNoSecret checks that out shows neither the key nor the token in any
// common rendering.
func assertNoSecret(t *testing.T, out string, secret []byte) {
	t.Helper()
	assert.NotContains(t, out, hex.EncodeToString(secret))
	assert.NotContains(t, out, fmt.Sprintf("%X", secret))
	assert.NotContains(t, out, string(secret))
	assert.NotContains(t, out, fmt.Sprint(secret))
	assert.NotContains(t, out, string(testToken))
}
