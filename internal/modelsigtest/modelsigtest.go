// Package modelsigtest makes OpenSSF Model Signing bundles with Go's crypto,
// in the form model_signing's private-key method writes, so tests can check
// vramseal's offline verification without the upstream tool. It is for
// tests only.
package modelsigtest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"sort"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// Model is what a signature covers.
type Model struct {
	// Name is the subject name, the model directory's base name.
	Name string
	// Files maps each file path, relative to the model directory, to its bytes.
	Files map[string][]byte
	// Method is "files" or "shards".
	Method string
	// ShardSize is the byte-range length of the "shards" method.
	ShardSize int64
	// IgnorePaths are written into the serialization, as the signer was told.
	IgnorePaths []string
	// AllowSymlinks is the serialization's allow_symlinks.
	AllowSymlinks bool
}

// Resource is one entry of the manifest, as the statement lists it.
type Resource struct {
	Name   string `json:"name"`
	Algo   string `json:"algorithm"`
	Digest string `json:"digest"`
}

// Resources lists the model's resources in the order model_signing writes
// them: by file, then by start offset.
func (m Model) Resources() []Resource {
	paths := make([]string, 0, len(m.Files))
	for p := range m.Files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var out []Resource
	for _, p := range paths {
		data := m.Files[p]
		if m.Method == "files" {
			out = append(out, Resource{Name: p, Algo: "sha256", Digest: sum(data)})
			continue
		}
		for start := int64(0); start < int64(len(data)) || start == 0; start += m.ShardSize {
			end := min(start+m.ShardSize, int64(len(data)))
			out = append(out, Resource{Name: fmt.Sprintf("%s:%d:%d", p, start, end), Algo: "sha256", Digest: sum(data[start:end])})
			if end == int64(len(data)) {
				break
			}
		}
	}
	return out
}

// Statement is the in-toto statement the signature covers, as JSON.
func (m Model) Statement() []byte {
	return StatementOf(m, m.Resources())
}

// StatementOf encodes a statement over resources as given, with the subject
// digest computed over them, so tests can alter the list.
func StatementOf(m Model, resources []Resource) []byte {
	subject := sha256.New()
	for _, r := range resources {
		raw, _ := hex.DecodeString(r.Digest)
		subject.Write(raw)
	}
	ser := map[string]any{"method": m.Method, "hash_type": "sha256", "allow_symlinks": m.AllowSymlinks}
	if m.Method == "shards" {
		ser["shard_size"] = m.ShardSize
	}
	if len(m.IgnorePaths) > 0 {
		ser["ignore_paths"] = m.IgnorePaths
	}
	st := map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": m.Name, "digest": map[string]string{"sha256": hex.EncodeToString(subject.Sum(nil))}}},
		"predicateType": "https://model_signing/signature/v1.0",
		"predicate":     map[string]any{"serialization": ser, "resources": resources},
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		panic(err) // maps of strings and numbers always encode
	}
	return b
}

// NewKey makes an ECDSA key on curve.
func NewKey(curve elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return k
}

// PublicPEM is key's public half as a PEM "PUBLIC KEY".
func PublicPEM(key *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Bundle signs payload as an in-toto DSSE envelope with key and wraps it in
// a Sigstore bundle v0.3 whose key hint is key's fingerprint.
func Bundle(key *ecdsa.PrivateKey, payload []byte) []byte {
	signer, err := dsse.NewEnvelopeSigner(ecdsaSigner{key})
	if err != nil {
		panic(err)
	}
	env, err := signer.SignPayload(context.Background(), "application/vnd.in-toto+json", payload)
	if err != nil {
		panic(err)
	}
	hint := sha256.Sum256(PublicPEM(key))
	b, err := json.MarshalIndent(map[string]any{
		"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
		"verificationMaterial": map[string]any{
			"publicKey":   map[string]string{"hint": hex.EncodeToString(hint[:])},
			"tlogEntries": []any{},
		},
		"dsseEnvelope": env,
	}, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

// Sign is Bundle over the model's statement.
func Sign(key *ecdsa.PrivateKey, m Model) []byte { return Bundle(key, m.Statement()) }

// ecdsaSigner signs with the SHA-2 model_signing pairs with the key's curve.
type ecdsaSigner struct{ key *ecdsa.PrivateKey }

func (s ecdsaSigner) Sign(_ context.Context, data []byte) ([]byte, error) {
	h := crypto.SHA256
	switch s.key.Curve {
	case elliptic.P384():
		h = crypto.SHA384
	case elliptic.P521():
		h = crypto.SHA512
	}
	d := h.New()
	d.Write(data)
	return ecdsa.SignASN1(rand.Reader, s.key, d.Sum(nil))
}

func (s ecdsaSigner) KeyID() (string, error) { return "", nil }

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
