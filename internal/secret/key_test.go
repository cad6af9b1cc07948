package secret_test

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/secret"
	"github.com/vramseal/vramseal/messages"
)

var testToken = []byte("0123456789abcdef-test-token")

func mustDerive(t testing.TB, token []byte, purpose, worker string) *secret.Key {
	t.Helper()
	k, err := secret.Derive(token, purpose, worker)
	require.NoError(t, err)
	return k
}

// probe is HMAC-SHA256 of "probe" under k.
func probe(k *secret.Key) []byte {
	m := k.NewMAC()
	m.Write([]byte("probe"))
	return m.Sum(nil)
}

func TestDeriveIsHKDFOverPurposeAndWorker(t *testing.T) {
	want, err := hkdf.Key(sha256.New, testToken, nil, "purpose\x00w1", secret.Len)
	require.NoError(t, err)
	m := hmac.New(sha256.New, want)
	m.Write([]byte("probe"))
	assert.Equal(t, m.Sum(nil), probe(mustDerive(t, testToken, "purpose", "w1")))

	base := probe(mustDerive(t, testToken, "purpose", "w1"))
	assert.False(t, bytes.Equal(base, probe(mustDerive(t, testToken, "other", "w1"))), "other purpose")
	assert.False(t, bytes.Equal(base, probe(mustDerive(t, testToken, "purpose", "w2"))), "other worker")
	assert.False(t, bytes.Equal(base, probe(mustDerive(t, append([]byte("x"), testToken...), "purpose", "w1"))), "other token")
	assert.False(t, bytes.Equal(base, probe(mustDerive(t, testToken, "purpose\x00w", "1"))), "the NUL keeps purpose and worker apart")
}

func TestDeriveRefusesBadInput(t *testing.T) {
	for name, in := range map[string]struct {
		token  []byte
		worker string
	}{
		"nil token":       {nil, "w1"},
		"short token":     {make([]byte, secret.MinTokenLen-1), "w1"},
		"empty worker ID": {testToken, ""},
	} {
		t.Run(name, func(t *testing.T) {
			k, err := secret.Derive(in.token, "p", in.worker)
			assert.ErrorIs(t, err, messages.ErrConfig)
			assert.Nil(t, k)
		})
	}
	_, err := secret.Derive(make([]byte, secret.MinTokenLen), "p", "w1")
	assert.NoError(t, err, "a token of exactly MinTokenLen bytes is enough")
}

func TestZeroDisarmsEveryCopy(t *testing.T) {
	k := mustDerive(t, testToken, "p", "w1")
	copied := *k
	require.True(t, k.Usable())
	k.Zero()
	assert.False(t, k.Usable())
	assert.False(t, copied.Usable(), "a copy shares the wiped buffer")
	assert.Equal(t, "secret.Key("+k.Fingerprint()+", zeroed)", k.String())
	k.Zero() // twice is harmless
	(*secret.Key)(nil).Zero()
	assert.False(t, (*secret.Key)(nil).Usable())
	assert.False(t, (&secret.Key{}).Usable())
	assert.Equal(t, "x(unset)", (&secret.Key{}).Redacted("x"))
	assert.Equal(t, "secret.Key(nil)", (*secret.Key)(nil).String())
}
