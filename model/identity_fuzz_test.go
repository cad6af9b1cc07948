package model

import (
	"bytes"
	"crypto/elliptic"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/modelsigtest"
	"github.com/vramseal/vramseal/internal/untrusted"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// FuzzReadDigestList feeds the digest-list reader arbitrary text: it must
// never panic, must refuse only with ErrInvalidInput and a plain message,
// and every name it accepts must be found again by Lookup, with a digest
// that a list written back in sha256sum's format reads the same.
// Seeds: testdata/fuzz/FuzzReadDigestList.
func FuzzReadDigestList(f *testing.F) {
	f.Fuzz(func(t *testing.T, text string) {
		l, err := ReadDigestList(strings.NewReader(text), "sums")
		if err != nil {
			require.ErrorIs(t, err, messages.ErrInvalidInput)
			require.NoError(t, untrusted.CheckPlain(err.Error()))
			return
		}
		var again strings.Builder
		for _, n := range l.Names() {
			e, ok := l.Lookup(n)
			require.True(t, ok, "%q", n)
			require.NoError(t, sealer.ValidateHexSum("digest", e.SHA256))
			if strings.ContainsAny(n, "\\\n\r") {
				fmt.Fprintf(&again, "\\%s  %s\n", e.SHA256, strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`).Replace(n))
			} else {
				fmt.Fprintf(&again, "%s  %s\n", e.SHA256, n)
			}
		}
		back, err := ReadDigestList(strings.NewReader(again.String()), "again")
		require.NoError(t, err, "%q", again.String())
		assert.Equal(t, l.Names(), back.Names())
	})
}

// fuzzKey signs the seeds of FuzzVerifyModelSignature; the target verifies
// with it.
var fuzzKey = modelsigtest.NewKey(elliptic.P256())

// FuzzVerifyModelSignature feeds the bundle verifier arbitrary bytes: it
// must never panic and must refuse only with ErrInvalidInput or
// ErrModelRejected and a one-line plain message. Random bytes cannot carry a
// valid signature, so the valid seed (signed in the target with fuzzKey) is
// the only acceptance; it must yield a consistent manifest.
func FuzzVerifyModelSignature(f *testing.F) {
	m := modelsigtest.Model{Name: "m", Method: "shards", ShardSize: 4, Files: map[string][]byte{"a": []byte("0123456789"), "b/c": []byte("x")}}
	f.Add(modelsigtest.Sign(fuzzKey, m))
	m.Method = "files"
	f.Add(modelsigtest.Sign(fuzzKey, m))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{}},"dsseEnvelope":{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"MEUCIQ=="}]}}`))
	pub, err := ParsePublicKey(modelsigtest.PublicPEM(fuzzKey))
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, bundle []byte) {
		man, err := VerifyModelSignature(bundle, pub, "model.sig")
		if err != nil {
			require.True(t, errors.Is(err, messages.ErrInvalidInput) || errors.Is(err, messages.ErrModelRejected), "%v", err)
			require.NoError(t, untrusted.CheckPlain(err.Error()))
			return
		}
		require.NotEmpty(t, man.Names())
		for _, n := range man.Names() {
			e, ok := man.Lookup(n)
			require.True(t, ok)
			if man.Method == MethodShards {
				var at int64
				for _, r := range e.Ranges {
					require.Equal(t, at, r.Start, "ranges sorted and tiling")
					at = r.End
				}
				require.NoError(t, e.Check(at))
			}
		}
		require.True(t, bytes.Contains(bundle, []byte("dsseEnvelope")))
	})
}
