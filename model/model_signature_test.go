package model

import (
	"bytes"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/modelsigtest"
	"github.com/vramseal/vramseal/internal/untrusted"
	"github.com/vramseal/vramseal/messages"
)

func testModel(method string) modelsigtest.Model {
	return modelsigtest.Model{
		Name: "tiny-model", Method: method, ShardSize: 7,
		Files: map[string][]byte{
			"model-00001-of-00002.safetensors": bytes.Repeat([]byte("abc"), 7), // 21 bytes: 3 shards of 7
			"model-00002-of-00002.safetensors": []byte("0123456789"),           // 10 bytes: 7 + 3
			"config.json":                      []byte(`{"x":1}`),
		},
		IgnorePaths: []string{"model.sig", ".git", "notes"},
	}
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// matchFile streams data through a Matcher for e in uneven writes and
// returns the result.
func matchFile(t *testing.T, e Expectation, data []byte) error {
	t.Helper()
	m, err := NewMatcher([]Expectation{e}, int64(len(data)))
	if err != nil {
		return err
	}
	for p := data; len(p) > 0; {
		n := min(len(p), 4)
		_, _ = m.Write(p[:n])
		p = p[n:]
	}
	return m.Result(hexSum(data))
}

func TestVerifyModelSignatureValid(t *testing.T) {
	for _, tc := range []struct {
		curve  elliptic.Curve
		method string
	}{{elliptic.P256(), MethodFiles}, {elliptic.P384(), MethodShards}, {elliptic.P256(), MethodShards}, {elliptic.P384(), MethodFiles}, {elliptic.P521(), MethodFiles}} {
		t.Run(tc.curve.Params().Name+"/"+tc.method, func(t *testing.T) {
			key := modelsigtest.NewKey(tc.curve)
			model := testModel(tc.method)
			pub, err := ParsePublicKey(modelsigtest.PublicPEM(key))
			require.NoError(t, err)
			m, err := VerifyModelSignature(modelsigtest.Sign(key, model), pub, "model.sig")
			require.NoError(t, err)
			assert.Equal(t, "tiny-model", m.Subject)
			assert.Equal(t, tc.method, m.Method)
			assert.Len(t, m.SubjectDigest, 64)
			sum := sha256.Sum256(modelsigtest.PublicPEM(key))
			assert.Equal(t, hex.EncodeToString(sum[:]), m.KeyFingerprint)
			assert.ElementsMatch(t, []string{"config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}, m.Names())
			for name, data := range model.Files {
				e, ok := m.Lookup(name)
				require.True(t, ok, name)
				assert.Equal(t, "signature model.sig", e.Source)
				if tc.method == MethodShards {
					assert.Empty(t, e.SHA256)
					assert.Len(t, e.Ranges, (len(data)+6)/7)
				}
				require.NoError(t, matchFile(t, e, data), name)

				off := append([]byte(nil), data...)
				off[len(off)/2] ^= 1
				var rej *messages.RejectedError
				require.True(t, errors.As(matchFile(t, e, off), &rej), "a changed byte is caught")
				assert.Equal(t, name, rej.File)
				if tc.method == MethodShards {
					assert.True(t, rej.Start <= int64(len(off)/2) && int64(len(off)/2) < rej.End, "%+v", rej)
				}
				assert.ErrorIs(t, matchFile(t, e, data[:len(data)-1]), messages.ErrModelRejected, "a file one byte short")
				assert.ErrorIs(t, matchFile(t, e, append(append([]byte(nil), data...), 0)), messages.ErrModelRejected, "a file one byte long")
			}
			assert.True(t, m.Ignored("notes/todo.txt"))
			assert.True(t, m.Ignored("./model.sig"))
			assert.False(t, m.Ignored("notes2"))
		})
	}
}

// rewrite decodes a bundle, lets change alter it, and encodes it again.
func rewrite(t *testing.T, b []byte, change func(map[string]any)) []byte {
	t.Helper()
	var v map[string]any
	require.NoError(t, json.Unmarshal(b, &v))
	change(v)
	out, err := json.Marshal(v)
	require.NoError(t, err)
	return out
}

func envelope(v map[string]any) map[string]any { return v["dsseEnvelope"].(map[string]any) }

// renamed gives the resource for config.json the name name.
func renamed(res []modelsigtest.Resource, name string) []modelsigtest.Resource {
	for i := range res {
		if res[i].Name == "config.json" {
			res[i].Name = name
		}
	}
	return res
}

func TestVerifyModelSignatureRefusals(t *testing.T) {
	key := modelsigtest.NewKey(elliptic.P256())
	pub, err := ParsePublicKey(modelsigtest.PublicPEM(key))
	require.NoError(t, err)
	model := testModel(MethodFiles)
	good := modelsigtest.Sign(key, model)

	tamperedPayload := rewrite(t, good, func(v map[string]any) {
		p, _ := base64.StdEncoding.DecodeString(envelope(v)["payload"].(string))
		p = bytes.Replace(p, []byte("tiny-model"), []byte("tiny-modem"), 1)
		envelope(v)["payload"] = base64.StdEncoding.EncodeToString(p)
	})
	tamperedSig := rewrite(t, good, func(v map[string]any) {
		sig := envelope(v)["signatures"].([]any)[0].(map[string]any)
		raw, _ := base64.StdEncoding.DecodeString(sig["sig"].(string))
		raw[len(raw)-1] ^= 1
		sig["sig"] = base64.StdEncoding.EncodeToString(raw)
	})
	other := modelsigtest.NewKey(elliptic.P256())
	byOtherKey := modelsigtest.Sign(other, model)
	byOtherNoHint := rewrite(t, byOtherKey, func(v map[string]any) {
		v["verificationMaterial"].(map[string]any)["publicKey"] = map[string]any{}
	})
	keyless := rewrite(t, good, func(v map[string]any) {
		v["verificationMaterial"] = map[string]any{"certificate": map[string]any{"rawBytes": "MIIB"}, "tlogEntries": []any{}}
	})
	res := model.Resources()
	res[0].Digest = strings.Repeat("0", 64)
	st := modelsigtest.StatementOf(model, res)
	badSubject := modelsigtest.Bundle(key, bytes.Replace(st, []byte(`"sha256": "`), []byte(`"sha256": "f`), 1))
	twice := model.Resources()
	twice = append(twice, twice[0])
	twiceDotted := model.Resources()
	twiceDotted = append(twiceDotted, modelsigtest.Resource{Name: "./" + twiceDotted[0].Name, Algo: "sha256", Digest: twiceDotted[0].Digest})
	shards := testModel(MethodShards)
	shardTwice := shards.Resources()
	shardTwice = append(shardTwice, modelsigtest.Resource{Name: "./" + shardTwice[1].Name, Algo: "sha256", Digest: shardTwice[1].Digest})
	older := modelsigtest.Bundle(key, bytes.Replace(model.Statement(), []byte("https://model_signing/signature/v1.0"), []byte("https://model_signing/Digests/v0.1"), 1))
	blake := modelsigtest.Bundle(key, bytes.Replace(model.Statement(), []byte(`"hash_type": "sha256"`), []byte(`"hash_type": "blake3"`), 1))

	tests := map[string]struct {
		bundle []byte
		kind   error
		want   string
	}{
		"tampered payload":         {tamperedPayload, messages.ErrModelRejected, "does not verify"},
		"tampered signature":       {tamperedSig, messages.ErrModelRejected, "does not verify"},
		"another key":              {byOtherKey, messages.ErrModelRejected, "another key"},
		"another key without hint": {byOtherNoHint, messages.ErrModelRejected, "does not verify"},
		"keyless":                  {keyless, messages.ErrInvalidInput, "only bundles signed with a private key"},
		"subject digest":           {badSubject, messages.ErrModelRejected, "subject digest"},
		"resource twice":           {modelsigtest.Bundle(key, modelsigtest.StatementOf(model, twice)), messages.ErrInvalidInput, "listed twice"},
		"resource twice, as ./":    {modelsigtest.Bundle(key, modelsigtest.StatementOf(model, twiceDotted)), messages.ErrInvalidInput, "not a clean path"},
		"shard twice, as ./":       {modelsigtest.Bundle(key, modelsigtest.StatementOf(shards, shardTwice)), messages.ErrInvalidInput, "not a clean path"},
		"resource through x/..":    {modelsigtest.Bundle(key, modelsigtest.StatementOf(model, renamed(model.Resources(), "x/../config.json"))), messages.ErrInvalidInput, "not a clean path"},
		"resource outside":         {modelsigtest.Bundle(key, modelsigtest.StatementOf(model, renamed(model.Resources(), "../config.json"))), messages.ErrInvalidInput, "not a clean path"},
		"junk signature first": {rewrite(t, good, func(v map[string]any) {
			sigs := envelope(v)["signatures"].([]any)
			junk := map[string]any{"keyid": "", "sig": base64.StdEncoding.EncodeToString([]byte("junk"))}
			envelope(v)["signatures"] = append([]any{junk}, sigs...)
		}), messages.ErrModelRejected, "does not verify"},
		"no signature":      {rewrite(t, good, func(v map[string]any) { envelope(v)["signatures"] = []any{} }), messages.ErrInvalidInput, "no signature"},
		"pre-1.0 predicate": {older, messages.ErrInvalidInput, "re-sign"},
		"other hash":        {blake, messages.ErrInvalidInput, "hash type"},
		"not JSON":          {[]byte("model"), messages.ErrInvalidInput, "not a Sigstore bundle"},
		"other media type":  {rewrite(t, good, func(v map[string]any) { v["mediaType"] = "x" }), messages.ErrInvalidInput, "media type"},
		"no envelope":       {rewrite(t, good, func(v map[string]any) { delete(v, "dsseEnvelope") }), messages.ErrInvalidInput, "no DSSE"},
		"payload type":      {rewrite(t, good, func(v map[string]any) { envelope(v)["payloadType"] = "text/plain" }), messages.ErrInvalidInput, "payload type"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := VerifyModelSignature(tt.bundle, pub, "model.sig")
			assert.Nil(t, m)
			require.ErrorIs(t, err, tt.kind)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), "model.sig")
			assert.NotContains(t, err.Error(), "\n", "one line")
			require.NoError(t, untrusted.CheckPlain(err.Error()))
		})
	}
}

func TestParsePublicKey(t *testing.T) {
	for _, bad := range [][]byte{nil, []byte("not pem"), pemOf("PRIVATE KEY", []byte{1}), pemOf("PUBLIC KEY", []byte{1, 2, 3})} {
		_, err := ParsePublicKey(bad)
		assert.ErrorIs(t, err, messages.ErrInvalidInput)
	}
	_, err := ParsePublicKey(modelsigtest.PublicPEM(modelsigtest.NewKey(elliptic.P224())))
	assert.ErrorIs(t, err, messages.ErrInvalidInput, "P-224 is not a curve of the format")
}

func pemOf(kind string, der []byte) []byte {
	return []byte("-----BEGIN " + kind + "-----\n" + base64.StdEncoding.EncodeToString(der) + "\n-----END " + kind + "-----\n")
}

func TestMatchFiles(t *testing.T) {
	key := modelsigtest.NewKey(elliptic.P256())
	pub, err := ParsePublicKey(modelsigtest.PublicPEM(key))
	require.NoError(t, err)
	m, err := VerifyModelSignature(modelsigtest.Sign(key, testModel(MethodFiles)), pub, "model.sig")
	require.NoError(t, err)
	all := []string{"config.json", "model-00001-of-00002.safetensors", "./model-00002-of-00002.safetensors"}

	got, err := matchFiles(m, all, "--signature model.sig", false, true)
	require.NoError(t, err)
	assert.Len(t, got, 3)

	_, err = matchFiles(m, all[1:], "--signature model.sig", false, true)
	require.ErrorIs(t, err, messages.ErrModelRejected, "a missing file")
	assert.Contains(t, err.Error(), "config.json")
	assert.Contains(t, err.Error(), "--allow-partial")
	got, err = matchFiles(m, all[1:], "--signature model.sig", false, false)
	require.NoError(t, err, "--allow-partial")
	assert.Len(t, got, 2)

	extra := append(all, "extra.safetensors")
	_, err = matchFiles(m, extra, "--signature model.sig", false, true)
	require.ErrorIs(t, err, messages.ErrModelRejected, "an extra file not ignored")
	assert.Contains(t, err.Error(), "extra.safetensors")
	assert.Contains(t, err.Error(), "--allow-unlisted")
	got, err = matchFiles(m, extra, "--signature model.sig", true, true)
	require.NoError(t, err, "--allow-unlisted")
	assert.Len(t, got, 3)
}

func TestMatcherSharedAndOverlappingRanges(t *testing.T) {
	data := []byte("the quick brown fox jumps over the lazy dog")
	n := int64(len(data))
	a := Expectation{Name: "f", Source: "a", Ranges: []RangeDigest{{0, 10, hexSum(data[:10])}, {10, n, hexSum(data[10:])}}}
	b := Expectation{Name: "f", Source: "b", Ranges: []RangeDigest{{0, 10, hexSum(data[:10])}, {10, 20, hexSum(data[10:20])}, {20, n, hexSum(data[20:])}}}
	c := Expectation{Name: "f", Source: "c", Ranges: []RangeDigest{{0, 3, hexSum(data[:3])}, {3, n, hexSum(data[3:])}}}
	w := Expectation{Name: "f", Source: "w", SHA256: hexSum(data)}
	m, err := NewMatcher([]Expectation{a, b, c, w}, n)
	require.NoError(t, err)
	_, _ = m.Write(data[:15])
	_, _ = m.Write(data[15:])
	require.NoError(t, m.Result(hexSum(data)))

	b.Ranges[1].SHA256 = hexSum([]byte("x"))
	m, err = NewMatcher([]Expectation{a, b}, n)
	require.NoError(t, err)
	_, _ = m.Write(data)
	var rej *messages.RejectedError
	require.True(t, errors.As(m.Result(hexSum(data)), &rej))
	assert.Equal(t, messages.RejectedError{File: "f", Source: "b", Expected: hexSum([]byte("x")), Actual: hexSum(data[10:20]), Start: 10, End: 20}, *rej)
	assert.Contains(t, rej.Error(), "bytes [10, 20)")

	m, err = NewMatcher([]Expectation{w}, n)
	require.NoError(t, err)
	assert.ErrorIs(t, m.Result(hexSum(data[1:])), messages.ErrModelRejected)
}
