package sealer

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
)

var testToken = []byte("0123456789abcdef-test-token")

func mustKey(t testing.TB, token []byte, worker string) *Key {
	t.Helper()
	k, err := DeriveKey(token, worker)
	require.NoError(t, err)
	return k
}

// macUnder is HMAC-SHA256 of "probe" under k, to compare keys without
// reaching their bytes.
func macUnder(k *Key) []byte {
	m := k.NewMAC()
	m.Write([]byte("probe"))
	return m.Sum(nil)
}

// hmacOf is HMAC-SHA256 of "probe" under key.
func hmacOf(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("probe"))
	return m.Sum(nil)
}

// testKeyBytes is what the seal key of worker derived from token holds,
// computed here without the package's code.
func testKeyBytes(t testing.TB, token []byte, worker string) []byte {
	t.Helper()
	b, err := hkdf.Key(sha256.New, token, nil, "vramseal/v1/shard-record-hmac-sha256\x00"+worker, 32)
	require.NoError(t, err)
	return b
}

func TestDeriveKeyRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name   string
		token  []byte
		worker string
	}{
		{"nil token", nil, "w1"},
		{"empty token", []byte{}, "w1"},
		{"token one byte short", make([]byte, MinTokenLen-1), "w1"},
		{"empty worker ID", make([]byte, MinTokenLen), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := DeriveKey(tt.token, tt.worker)
			assert.ErrorIs(t, err, messages.ErrConfig)
			assert.Nil(t, k)
		})
	}
	_, err := DeriveKey(make([]byte, MinTokenLen), "w1")
	assert.NoError(t, err, "a token of exactly MinTokenLen bytes is enough")
}

func TestDeriveKeyIsHKDFWithLabelAndWorker(t *testing.T) {
	k := mustKey(t, testToken, "worker-7")
	assert.Equal(t, hmacOf(testKeyBytes(t, testToken, "worker-7")), macUnder(k))

	plain, err := hkdf.Key(sha256.New, testToken, nil, "worker-7", 32)
	require.NoError(t, err)
	assert.NotEqual(t, hmacOf(plain), macUnder(k), "the label must separate seal keys from other uses of the token")
}

func TestDeriveKeyDeterministicAndSeparated(t *testing.T) {
	a := mustKey(t, testToken, "worker-1")
	assert.Equal(t, macUnder(a), macUnder(mustKey(t, testToken, "worker-1")), "same token and worker, same key")
	assert.NotEqual(t, macUnder(a), macUnder(mustKey(t, testToken, "worker-2")), "other worker")
	assert.NotEqual(t, macUnder(a), macUnder(mustKey(t, append([]byte("x"), testToken...), "worker-1")), "other token")
	assert.NotEqual(t, macUnder(a), macUnder(mustKey(t, testToken, "worker-1\x00")), "worker ID with a trailing NUL")
}

func TestKeyFingerprint(t *testing.T) {
	k := mustKey(t, testToken, "w1")
	sum := sha256.Sum256(testToken)
	assert.Equal(t, hex.EncodeToString(sum[:])[:6], k.Fingerprint())
	assert.Equal(t, k.Fingerprint(), mustKey(t, testToken, "w2").Fingerprint(), "the fingerprint names the token")
	assert.Empty(t, (*Key)(nil).Fingerprint())
}

// secretForms are the ways a key's bytes could leak into text.
func secretForms(s []byte) []string {
	return []string{
		hex.EncodeToString(s), strings.ToUpper(hex.EncodeToString(s)), string(s),
		fmt.Sprint(s), fmt.Sprintf("%#v", s), fmt.Sprintf("%x", s)[:16],
		fmt.Sprint(s[:8])[1:20], fmt.Sprint([32]byte(s)),
	}
}

func TestKeyPrintsNoSecret(t *testing.T) {
	k := mustKey(t, testToken, "w1")
	forms := secretForms(testKeyBytes(t, testToken, "w1"))
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"}
	for _, verb := range verbs {
		for name, v := range map[string]any{"*Key": k, "Key": *k, "in a struct": struct{ K *Key }{k}, "in a slice": []*Key{k}} {
			out := fmt.Sprintf(verb, v)
			for _, f := range forms {
				assert.NotContains(t, out, f, "%s of %s leaks the key", verb, name)
			}
		}
	}
	assert.Equal(t, "sealer.Key("+k.Fingerprint()+")", k.String())
	assert.Equal(t, k.String(), k.GoString())
	assert.Equal(t, k.String(), fmt.Sprintf("%v", k))
	assert.Equal(t, k.String(), fmt.Sprintf("%#v", k))
	assert.Equal(t, "sealer.Key(nil)", (*Key)(nil).String())
	assert.Equal(t, "<nil>", fmt.Sprintf("%v", (*Key)(nil)))
	assert.Equal(t, "sealer.Key(unset)", fmt.Sprintf("%v", Key{}))
}

func TestKeyZero(t *testing.T) {
	k := mustKey(t, testToken, "w1")
	copied := *k
	k.Zero()
	assert.False(t, k.Usable())
	assert.False(t, copied.Usable(), "a copy shares the wiped buffer")
	assert.Contains(t, k.String(), "zeroed")
	assert.Equal(t, mustKey(t, testToken, "w1").Fingerprint(), k.Fingerprint(), "the fingerprint stays for logs")
	k.Zero() // twice is harmless
	(*Key)(nil).Zero()

	s := validShard(t)
	assert.ErrorIs(t, Sign(k, &s), messages.ErrConfig)
	assert.ErrorIs(t, Sign(&copied, &s), messages.ErrConfig)
	assert.ErrorIs(t, Sign(&Key{}, &s), messages.ErrConfig)
	assert.ErrorIs(t, Sign(nil, &s), messages.ErrConfig)
	assert.False(t, s.Signed())
}
