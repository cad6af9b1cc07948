package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/spf13/pflag"

	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/safefile"
	"github.com/vramseal/vramseal/sealer"
)

// identityOptions are the flags of "vramseal run" that say what the model
// must be: published digests, or an OpenSSF Model Signing signature.
type identityOptions struct {
	sha256sums    []string
	expect        []string
	signature     string
	publicKey     string
	allowUnlisted bool
	allowPartial  bool
}

func (o *identityOptions) register(f *pflag.FlagSet) {
	f.StringArrayVar(&o.sha256sums, "sha256sums", nil, "digest list in sha256sum's format (as release pages publish); every file must match its digest before its seal is acknowledged (repeatable)")
	f.StringArrayVar(&o.expect, "expect-sha256", nil, "NAME=HEX: the SHA-256 the model file NAME must have (repeatable)")
	f.StringVar(&o.signature, "signature", "", "OpenSSF Model Signing bundle (model.sig, made by 'model_signing sign key'); verified offline with --public-key")
	f.StringVar(&o.publicKey, "public-key", "", "PEM public key (ECDSA P-256, P-384 or P-521) that made --signature")
	f.BoolVar(&o.allowUnlisted, "allow-unlisted", false, "seal files that the digests or signature do not list, unchecked")
	f.BoolVar(&o.allowPartial, "allow-partial", false, "let a signature list files that are not there (not in the model directory, or not given); a listed file that is there is still checked")
}

// expectationSource is one place that says what files must hash to.
type expectationSource struct {
	what       string // how messages name it, e.g. "--sha256sums sums.txt"
	list       sealer.Expectations
	requireAll bool // every file it lists must be sealed
	signed     bool // it is the verified signature
}

// modelIdentity is what the flags say the model must be.
type modelIdentity struct {
	sources  []expectationSource
	manifest *sealer.SignedManifest // the verified signature; nil without
	sigPath  string
	matched  int // files the signature covered, once attached
}

// given reports whether any identity flag was set.
func (o *identityOptions) given() bool {
	return len(o.sha256sums) > 0 || len(o.expect) > 0 || o.signature != "" || o.publicKey != ""
}

// Bounds on the identity files read whole: a PEM public key is a few
// hundred bytes, and a signature bundle names each file of a model with its
// digest (a model of thousands of files takes a few MB).
const (
	maxPublicKeyBytes = 64 << 10
	maxSignatureBytes = 64 << 20
)

// load reads the digest lists and verifies the signature. A malformed input
// is a usage error (exit 2); a signature that does not verify, or is made by
// another key, exits 4.
func (o *identityOptions) load() (*modelIdentity, error) {
	id := &modelIdentity{sigPath: o.signature}
	for _, path := range o.sha256sums {
		f, _, err := safefile.Open(path, safefile.Options{})
		if err != nil {
			return nil, usageErrorf("--sha256sums %s cannot be read (%v)", path, safefile.Cause(err))
		}
		list, err := sealer.ReadDigestList(f, path)
		f.Close()
		if err != nil {
			return nil, usageErrorf("--sha256sums: %v", err)
		}
		id.sources = append(id.sources, expectationSource{what: "--sha256sums " + path, list: list})
	}
	if len(o.expect) > 0 {
		list := sealer.NewDigestList()
		for _, v := range o.expect {
			name, sum, err := sealer.ParseExpectSHA256(v)
			if err == nil {
				err = list.Add(name, sum, "--expect-sha256")
			}
			if err != nil {
				return nil, usageErrorf("%v", err)
			}
		}
		id.sources = append(id.sources, expectationSource{what: "--expect-sha256", list: list})
	}
	switch {
	case o.signature == "" && o.publicKey == "":
		return id, nil
	case o.signature == "":
		return nil, usageErrorf("--public-key needs --signature model.sig, the bundle to verify")
	case o.publicKey == "":
		return nil, usageErrorf("--signature needs --public-key key.pem, the signer's public key; only key-signed bundles verify offline")
	}
	pemBytes, err := safefile.ReadFile(o.publicKey, maxPublicKeyBytes)
	if err != nil {
		return nil, usageErrorf("--public-key %s cannot be read (%v)", o.publicKey, safefile.Cause(err))
	}
	key, err := sealer.ParsePublicKey(pemBytes)
	if err != nil {
		return nil, usageErrorf("--public-key %s: %v", o.publicKey, err)
	}
	bundle, err := safefile.ReadFile(o.signature, maxSignatureBytes)
	if err != nil {
		return nil, usageErrorf("--signature %s cannot be read (%v)", o.signature, safefile.Cause(err))
	}
	m, err := sealer.VerifyModelSignature(bundle, key, o.signature)
	if err != nil {
		return nil, identityError(err)
	}
	id.manifest = m
	id.sources = append(id.sources, expectationSource{what: "--signature " + o.signature, list: m, requireAll: !o.allowPartial, signed: true})
	return id, nil
}

// identityError gives err the exit code its kind asks for: 4 for a model
// that is not the published one, 2 for bad input.
func identityError(err error) error {
	if errors.Is(err, messages.ErrModelRejected) {
		return withExitCode(exitModelRejected, err)
	}
	return withExitCode(exitUsage, err)
}

// ignored reports whether the signature leaves rel out of the model.
func (id *modelIdentity) ignored(rel string) bool {
	return id.manifest != nil && id.manifest.Ignored(rel)
}

// attach gives each source the check its bytes must pass: every expectation
// from every source that lists it. A file a source does not list (unless
// allowUnlisted), or a signed file neither among srcs nor in the model
// directory dir (unless --allow-partial), exits 4 before anything is sealed.
// It returns the files of dir that a source lists but that are not sealed:
// they are to be checked on the host (see hostCheck). dir is nil when the
// files were named one by one.
func (id *modelIdentity) attach(srcs []*modelSource, allowUnlisted bool, dir *modelDir) ([]*hostCheck, error) {
	if len(id.sources) == 0 {
		return nil, nil
	}
	names := make([]string, len(srcs))
	for i, s := range srcs {
		names[i] = s.relName
	}
	exps := make([][]sealer.Expectation, len(srcs))
	onHost := map[string]*hostCheck{}
	var checks []*hostCheck
	for _, source := range id.sources {
		var present []string
		if dir != nil {
			present = dir.listedInDir(source.list, names)
		}
		if _, err := sealer.MatchFiles(source.list, append(slices.Clone(names), present...), source.what, allowUnlisted, source.requireAll); err != nil {
			return nil, identityError(err)
		}
		for i, n := range names {
			if e, ok := source.list.Lookup(n); ok {
				exps[i] = append(exps[i], e)
				if source.signed {
					id.matched++
				}
			}
		}
		for _, n := range present {
			c := onHost[n]
			if c == nil {
				c = &hostCheck{rel: n, path: filepath.Join(dir.path, filepath.FromSlash(n))}
				onHost[n] = c
				checks = append(checks, c)
			}
			e, _ := source.list.Lookup(n)
			c.exps = append(c.exps, e)
			c.signed = c.signed || source.signed
		}
	}
	for i, src := range srcs {
		if len(exps[i]) == 0 {
			continue
		}
		m, err := sealer.NewMatcher(exps[i], src.size)
		if err != nil {
			return nil, identityError(fmt.Errorf("%s: %w", src.name, err))
		}
		src.check = m
	}
	return checks, nil
}

// recordVerified writes the ModelVerified record once every file the
// signature covers has sealed and matched.
func (w *worker) recordModelVerified(ctx context.Context) error {
	id := w.identity
	if id == nil || id.manifest == nil {
		return nil
	}
	m := id.manifest
	if err := w.rt.RecordModelVerified(ctx, messages.ModelVerified{
		KeyFingerprint: m.KeyFingerprint, Subject: m.Subject, SubjectDigest: m.SubjectDigest,
		Method: m.Method, Source: id.sigPath, Files: id.matched,
	}); err != nil {
		return err
	}
	w.logger.Info("model verified", "subject", m.Subject, "subject_digest", m.SubjectDigest, "method", m.Method,
		"key", sealer.ShortHex(m.KeyFingerprint), "files", id.matched)
	return nil
}

// openModel opens what "vramseal run" was given: one model directory (its
// *.safetensors, checked against its index), or model files; reads their
// tensor tables; and attaches the checks the identity flags ask for.
func (w *worker) openModel(args []string) ([]*modelSource, error) {
	o := w.opts
	id, err := o.identity.load()
	if err != nil {
		return nil, err
	}
	w.identity = id
	if len(args) == 0 {
		if o.identity.given() {
			return nil, usageErrorf("--sha256sums, --expect-sha256 and --signature check model files; pass the files or their directory")
		}
		return demoSources(), nil
	}
	dir, err := findModelDir(args, id.ignored)
	if err != nil {
		return nil, err
	}
	files, modelRef := args, o.modelRef
	if dir != nil {
		files, modelRef = dir.paths(), dir.modelRef(o.modelRef)
	}
	srcs, err := openModelFiles(files, o.shardID, modelRef)
	if err != nil {
		return nil, err
	}
	if dir != nil {
		err = dir.checkIndex(srcs)
	}
	var onHost []*hostCheck
	if err == nil {
		onHost, err = id.attach(srcs, o.identity.allowUnlisted, dir)
	}
	if err == nil {
		err = runHostChecks(onHost, w.logger)
	}
	if err != nil {
		closeSources(srcs)
		return nil, err
	}
	return srcs, nil
}

// sealCheck is src's check as the runtime takes it; nil when it has none.
func sealCheck(src *modelSource) messages.SealCheck {
	if src.check == nil {
		return nil
	}
	return src.check
}
