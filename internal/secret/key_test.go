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

// The purposes the tests derive keys for.
type (
	purposeP     struct{} // label "purpose"
	purposeOther struct{} // label "other"
	purposeNUL   struct{} // label "purpose\x00w", to show the NUL keeps purpose and worker apart
	purposeShort struct{} // label "p"
	purposeTest  struct{} // label "vramseal/test", kind "test.Key"
)

func (purposeP) Label() string     { return "purpose" }
func (purposeP) Kind() string      { return "p.Key" }
func (purposeOther) Label() string { return "other" }
func (purposeOther) Kind() string  { return "other.Key" }
func (purposeNUL) Label() string   { return "purpose\x00w" }
func (purposeNUL) Kind() string    { return "nul.Key" }
func (purposeShort) Label() string { return "p" }
func (purposeShort) Kind() string  { return "secret.Key" }
func (purposeTest) Label() string  { return testPurposeLabel }
func (purposeTest) Kind() string   { return "test.Key" }

func mustDerive[P secret.Purpose](t testing.TB, token []byte, worker string) *secret.Key[P] {
	t.Helper()
	k, err := secret.Derive[P](token, worker)
	require.NoError(t, err)
	return k
}

// probe is HMAC-SHA256 of "probe" under k.
func probe[P secret.Purpose](k *secret.Key[P]) []byte {
	m := k.NewMAC()
	m.Write([]byte("probe"))
	return m.Sum(nil)
}

func TestDeriveIsHKDFOverPurposeAndWorker(t *testing.T) {
	want, err := hkdf.Key(sha256.New, testToken, nil, "purpose\x00w1", secret.Len)
	require.NoError(t, err)
	m := hmac.New(sha256.New, want)
	m.Write([]byte("probe"))
	assert.Equal(t, m.Sum(nil), probe(mustDerive[purposeP](t, testToken, "w1")))

	base := probe(mustDerive[purposeP](t, testToken, "w1"))
	assert.False(t, bytes.Equal(base, probe(mustDerive[purposeOther](t, testToken, "w1"))), "other purpose")
	assert.False(t, bytes.Equal(base, probe(mustDerive[purposeP](t, testToken, "w2"))), "other worker")
	assert.False(t, bytes.Equal(base, probe(mustDerive[purposeP](t, append([]byte("x"), testToken...), "w1"))), "other token")
	assert.False(t, bytes.Equal(base, probe(mustDerive[purposeNUL](t, testToken, "1"))), "the NUL keeps purpose and worker apart")
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
			k, err := secret.Derive[purposeShort](in.token, in.worker)
			assert.ErrorIs(t, err, messages.ErrConfig)
			assert.Nil(t, k)
		})
	}
	_, err := secret.Derive[purposeShort](make([]byte, secret.MinTokenLen), "w1")
	assert.NoError(t, err, "a token of exactly MinTokenLen bytes is enough")
}

func TestZeroDisarmsEveryCopy(t *testing.T) {
	k := mustDerive[purposeShort](t, testToken, "w1")
	copied := *k
	require.True(t, k.Usable())
	k.Zero()
	assert.False(t, k.Usable())
	assert.False(t, copied.Usable(), "a copy shares the wiped buffer")
	assert.Equal(t, "secret.Key("+k.Fingerprint()+", zeroed)", k.String())
	k.Zero() // twice is harmless
	(*secret.Key[purposeShort])(nil).Zero()
	assert.False(t, (*secret.Key[purposeShort])(nil).Usable())
	assert.False(t, (&secret.Key[purposeShort]{}).Usable())
	assert.Equal(t, "secret.Key(unset)", (&secret.Key[purposeShort]{}).String())
	assert.Equal(t, "secret.Key(nil)", (*secret.Key[purposeShort])(nil).String())
	assert.Equal(t, "", (*secret.Key[purposeShort])(nil).WorkerID())
	assert.Equal(t, "w1", k.WorkerID())
}
