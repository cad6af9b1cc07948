package model

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/vramseal/vramseal/internal/untrusted"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// The names the OpenSSF Model Signing format (sigstore/model-transparency,
// predicate v1.0) uses.
const (
	bundleMediaType      = "application/vnd.dev.sigstore.bundle.v0.3+json"
	inTotoPayloadType    = "application/vnd.in-toto+json"
	inTotoStatementType  = "https://in-toto.io/Statement/v1"
	modelSigningV1       = "https://model_signing/signature/v1.0"
	modelSigningV01      = "https://model_signing/Digests/v0.1"
	MethodFiles          = "files"  // one resource per file, its whole SHA-256
	MethodShards         = "shards" // resources "path:start:end", one per byte range
	modelSigningHashType = "sha256"
)

// SignedManifest is the verified content of an OpenSSF Model Signing
// signature: which files (or byte ranges) make up the model, and their
// digests, as the holder of the signing key published them.
type SignedManifest struct {
	// Subject is the model's name, as signed.
	Subject string
	// SubjectDigest is the hex SHA-256 over the resources' digests, as signed
	// and checked.
	SubjectDigest string
	// Method is MethodFiles or MethodShards.
	Method string
	// keyFingerprint is the hex SHA-256 of the signer's public key in PEM
	// form, the value the format's bundles carry as their key hint.
	KeyFingerprint string
	// IgnorePaths are the paths the signer left out of the model.
	IgnorePaths []string
	// AllowSymlinks is the manifest's allow_symlinks: whether the signer
	// let symbolic links into the model. Without it, a symlink in the model
	// directory is refused, as the upstream verifier refuses one.
	AllowSymlinks bool

	byFile map[string]Expectation
	files  []string
}

// bundle is the part of a Sigstore bundle the private-key method uses.
type bundle struct {
	MediaType            string `json:"mediaType"`
	VerificationMaterial struct {
		PublicKey *struct {
			Hint string `json:"hint"`
		} `json:"publicKey"`
		Certificate          json.RawMessage `json:"certificate"`
		X509CertificateChain json.RawMessage `json:"x509CertificateChain"`
	} `json:"verificationMaterial"`
	DSSEEnvelope *dsse.Envelope `json:"dsseEnvelope"`
}

// statement is the in-toto Statement v1 the envelope carries.
type statement struct {
	Type    string `json:"_type"`
	Subject []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	PredicateType string `json:"predicateType"`
	Predicate     struct {
		Serialization struct {
			Method      string   `json:"method"`
			HashType    string   `json:"hash_type"`
			IgnorePaths []string `json:"ignore_paths"`
			// AllowSymlinks is absent or false unless the signer allowed them.
			AllowSymlinks bool `json:"allow_symlinks"`
		} `json:"serialization"`
		Resources []struct {
			Name      string `json:"name"`
			Algorithm string `json:"algorithm"`
			Digest    string `json:"digest"`
		} `json:"resources"`
	} `json:"predicate"`
}

// ParsePublicKey reads a PEM "PUBLIC KEY" (SubjectPublicKeyInfo) holding an
// ECDSA key on P-256, P-384 or P-521, the curves the format signs with.
func ParsePublicKey(pemBytes []byte) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%w: the public key is not a PEM \"PUBLIC KEY\" block", messages.ErrInvalidInput)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: the public key cannot be parsed", messages.ErrInvalidInput)
	}
	ec, ok := key.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: the public key is not an elliptic-curve (ECDSA) key; model signing keys are ECDSA on P-256, P-384 or P-521", messages.ErrInvalidInput)
	}
	if _, err := curveHash(ec.Curve); err != nil {
		return nil, err
	}
	return ec, nil
}

// keyFingerprint is the hex SHA-256 of key's PEM SubjectPublicKeyInfo, as
// the format's signer writes it into a bundle's key hint.
func keyFingerprint(key *ecdsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return hex.EncodeToString(sum[:])
}

// curveHash is the SHA-2 the format pairs with each curve.
func curveHash(c elliptic.Curve) (crypto.Hash, error) {
	switch c {
	case elliptic.P256():
		return crypto.SHA256, nil
	case elliptic.P384():
		return crypto.SHA384, nil
	case elliptic.P521():
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("%w: the public key's curve %s is not P-256, P-384 or P-521", messages.ErrInvalidInput, c.Params().Name)
}

// ecdsaVerifier checks DSSE signatures with one ECDSA key, hashing with the
// SHA-2 that matches its curve. It implements dsse.Verifier.
type ecdsaVerifier struct {
	key  *ecdsa.PublicKey
	hash crypto.Hash
}

func (v ecdsaVerifier) Verify(_ context.Context, data, sig []byte) error {
	h := v.hash.New()
	h.Write(data)
	if !ecdsa.VerifyASN1(v.key, h.Sum(nil), sig) {
		return errors.New("ECDSA signature does not verify")
	}
	return nil
}

// KeyID is empty: bundles of the format carry no key ID, and the library
// then matches by trying the key.
func (v ecdsaVerifier) KeyID() (string, error) { return "", nil }

func (v ecdsaVerifier) Public() crypto.PublicKey { return v.key }

// VerifyModelSignature verifies an OpenSSF Model Signing bundle made with
// the private-key method, offline: the Sigstore bundle v0.3, its DSSE
// envelope signed (over the pre-authentication encoding) by key, the in-toto
// Statement v1 with predicate v1.0, and the subject digest over the
// resources. source names the bundle in messages and expectations.
//
// A malformed bundle, or one signed with a certificate (keyless/OIDC), is an
// error wrapping messages.ErrInvalidInput; a signature that does not verify
// with key, or a manifest whose subject digest does not match, one wrapping
// messages.ErrModelRejected.
func VerifyModelSignature(bundleJSON []byte, key *ecdsa.PublicKey, source string) (*SignedManifest, error) {
	var b bundle
	if err := json.Unmarshal(bundleJSON, &b); err != nil {
		return nil, fmt.Errorf("%w: %s is not a Sigstore bundle (not JSON)", messages.ErrInvalidInput, source)
	}
	if b.MediaType != bundleMediaType {
		return nil, fmt.Errorf("%w: %s has media type %s; want %s, as model_signing writes",
			messages.ErrInvalidInput, source, untrusted.Quote(b.MediaType), bundleMediaType)
	}
	vm := b.VerificationMaterial
	if len(vm.Certificate) > 0 || len(vm.X509CertificateChain) > 0 || vm.PublicKey == nil {
		return nil, fmt.Errorf("%w: %s is signed with a certificate (keyless/OIDC); only bundles signed with a private key (model_signing sign key) verify offline",
			messages.ErrInvalidInput, source)
	}
	if b.DSSEEnvelope == nil {
		return nil, fmt.Errorf("%w: %s holds no DSSE envelope", messages.ErrInvalidInput, source)
	}
	h, err := curveHash(key.Curve)
	if err != nil {
		return nil, err
	}
	fingerprint := keyFingerprint(key)
	if hint := vm.PublicKey.Hint; hint != "" && hint != fingerprint {
		return nil, fmt.Errorf("%w: %s was signed with another key (key hint %s, given key %s)",
			messages.ErrModelRejected, source, shortHex(hint), shortHex(fingerprint))
	}
	if b.DSSEEnvelope.PayloadType != inTotoPayloadType {
		return nil, fmt.Errorf("%w: %s carries payload type %s, not %s",
			messages.ErrInvalidInput, source, untrusted.Quote(b.DSSEEnvelope.PayloadType), inTotoPayloadType)
	}
	ev, err := dsse.NewEnvelopeVerifier(ecdsaVerifier{key: key, hash: h})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	// The upstream verifier checks the envelope's first signature only, so
	// a bundle is valid exactly when its first signature is; a valid one
	// after a junk one does not make it valid.
	env := *b.DSSEEnvelope
	if len(env.Signatures) == 0 {
		return nil, fmt.Errorf("%w: %s: the DSSE envelope holds no signature", messages.ErrInvalidInput, source)
	}
	env.Signatures = env.Signatures[:1]
	_, payload, err := ev.VerifyAndDecode(context.Background(), &env)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: the signature does not verify with the given public key %s",
			messages.ErrModelRejected, source, shortHex(fingerprint))
	}
	m, err := parseStatement(payload, source)
	if err != nil {
		return nil, err
	}
	m.KeyFingerprint = fingerprint
	return m, nil
}

// parseStatement checks the signed statement and builds the manifest.
func parseStatement(payload []byte, source string) (*SignedManifest, error) {
	var st statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("%w: %s: the signed statement is not JSON", messages.ErrInvalidInput, source)
	}
	switch {
	case st.Type != inTotoStatementType:
		return nil, fmt.Errorf("%w: %s: statement type %s, not %s", messages.ErrInvalidInput, source, untrusted.Quote(st.Type), inTotoStatementType)
	case st.PredicateType == modelSigningV01:
		return nil, fmt.Errorf("%w: %s uses the pre-1.0 predicate %s; re-sign the model with model_signing 1.0 or later", messages.ErrInvalidInput, source, modelSigningV01)
	case st.PredicateType != modelSigningV1:
		return nil, fmt.Errorf("%w: %s: predicate type %s, not %s", messages.ErrInvalidInput, source, untrusted.Quote(st.PredicateType), modelSigningV1)
	case len(st.Subject) != 1:
		return nil, fmt.Errorf("%w: %s: the statement has %d subjects; want 1", messages.ErrInvalidInput, source, len(st.Subject))
	}
	ser := st.Predicate.Serialization
	if ser.Method != MethodFiles && ser.Method != MethodShards {
		return nil, fmt.Errorf("%w: %s: serialization method %s; only %q and %q verify", messages.ErrInvalidInput, source, untrusted.Quote(ser.Method), MethodFiles, MethodShards)
	}
	if ser.HashType != modelSigningHashType {
		return nil, fmt.Errorf("%w: %s: hash type %s; only %s verifies here", messages.ErrInvalidInput, source, untrusted.Quote(ser.HashType), modelSigningHashType)
	}
	m := &SignedManifest{
		Subject: st.Subject[0].Name, SubjectDigest: st.Subject[0].Digest["sha256"],
		Method: ser.Method, IgnorePaths: ser.IgnorePaths, AllowSymlinks: ser.AllowSymlinks, byFile: map[string]Expectation{},
	}
	// The subject digest is SHA-256 over the resources' raw digests in the
	// order the predicate lists them, as upstream model_signing's verifier
	// (sigstore/model-transparency, _signing/signing.py) computes it; its
	// signer sorts the resources by path (and offsets) first, but its
	// verifier does not re-sort, and neither does this one.
	subject := sha256.New()
	for _, r := range st.Predicate.Resources {
		if r.Algorithm != modelSigningHashType {
			return nil, fmt.Errorf("%w: %s: resource %s uses %s; only sha256 verifies here", messages.ErrInvalidInput, source, untrusted.Quote(r.Name), untrusted.Quote(r.Algorithm))
		}
		if err := sealer.ValidateHexSum("resource digest", r.Digest); err != nil {
			return nil, fmt.Errorf("%s: resource %s: %w", source, untrusted.Quote(r.Name), err)
		}
		raw, _ := hex.DecodeString(r.Digest)
		subject.Write(raw)
		if err := m.add(r.Name, r.Digest, source); err != nil {
			return nil, err
		}
	}
	if got := hex.EncodeToString(subject.Sum(nil)); got != m.SubjectDigest {
		return nil, fmt.Errorf("%w: %s: the subject digest %s does not match its resources (%s)",
			messages.ErrModelRejected, source, shortHex(m.SubjectDigest), shortHex(got))
	}
	for name, e := range m.byFile {
		slices.SortFunc(e.Ranges, func(a, b RangeDigest) int { return cmp.Compare(a.Start, b.Start) })
		m.byFile[name] = e
	}
	return m, nil
}

// add records one resource: a file, or a byte range of one. A resource
// listed twice, and for shards the same byte range, is refused; so is a
// name that is not a clean path inside the model directory ("./a",
// "x/../a", "/a", "../a"), which the upstream verifier, comparing names as
// they are with the paths it finds, never matches.
func (m *SignedManifest) add(name, digest, source string) error {
	twice := fmt.Errorf("%w: %s: resource %s is listed twice", messages.ErrInvalidInput, source, untrusted.Quote(name))
	if m.Method == MethodFiles {
		file := name
		if err := checkManifestPath(file, source); err != nil {
			return err
		}
		if _, dup := m.byFile[file]; dup {
			return twice
		}
		m.byFile[file] = Expectation{Name: file, Source: "signature " + source, SHA256: digest}
		m.files = append(m.files, file)
		return nil
	}
	file, start, end, err := parseShardName(name)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", messages.ErrInvalidInput, source, err)
	}
	if err := checkManifestPath(file, source); err != nil {
		return err
	}
	e, ok := m.byFile[file]
	if !ok {
		e = Expectation{Name: file, Source: "signature " + source}
		m.files = append(m.files, file)
	}
	if slices.ContainsFunc(e.Ranges, func(r RangeDigest) bool { return r.Start == start && r.End == end }) {
		return twice
	}
	e.Ranges = append(e.Ranges, RangeDigest{Start: start, End: end, SHA256: digest})
	m.byFile[file] = e
	return nil
}

// parseShardName splits a shard resource name, "path:start:end".
func parseShardName(name string) (file string, start, end int64, err error) {
	j := strings.LastIndexByte(name, ':')
	i := -1
	if j > 0 {
		i = strings.LastIndexByte(name[:j], ':')
	}
	if i <= 0 {
		return "", 0, 0, fmt.Errorf("shard resource %s is not path:start:end", untrusted.Quote(name))
	}
	start, err1 := strconv.ParseInt(name[i+1:j], 10, 64)
	end, err2 := strconv.ParseInt(name[j+1:], 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return "", 0, 0, fmt.Errorf("shard resource %s has a bad byte range", untrusted.Quote(name))
	}
	return name[:i], start, end, nil
}

// checkManifestPath refuses a resource path that is not clean, relative and
// inside the model directory.
func checkManifestPath(file, source string) error {
	if file == "" || file != path.Clean(file) || path.IsAbs(file) || file == ".." || strings.HasPrefix(file, "../") {
		return fmt.Errorf("%w: %s: resource %s is not a clean path inside the model directory (the upstream verifier would find no such file)",
			messages.ErrInvalidInput, source, untrusted.Quote(file))
	}
	return nil
}

// Lookup returns what the file called name (relative to the model
// directory, cleaned) must hash to.
func (m *SignedManifest) Lookup(name string) (Expectation, bool) {
	e, ok := m.byFile[cleanListName(name)]
	return e, ok
}

// Names returns every file of the model, in manifest order.
func (m *SignedManifest) Names() []string { return append([]string(nil), m.files...) }

// Ignored reports whether the signer left name out of the model: it is one
// of IgnorePaths or lies under one.
func (m *SignedManifest) Ignored(name string) bool {
	name = cleanListName(name)
	for _, p := range m.IgnorePaths {
		p = cleanListName(p)
		if name == p || strings.HasPrefix(name, p+"/") {
			return true
		}
	}
	return false
}

// shortHex cuts a hex value to 12 digits for messages and logs; what is not hex is
// quoted.
func shortHex(v string) string {
	if !sealer.IsLowerHex(v) {
		return untrusted.Quote(v)
	}
	if len(v) > 12 {
		return v[:12] + "..."
	}
	return v
}
