package main

import (
	"errors"

	"github.com/spf13/pflag"

	"github.com/vramseal/vramseal/internal/safefile"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/model"
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
	allowUnsigned bool
}

func (o *identityOptions) register(f *pflag.FlagSet) {
	f.StringArrayVar(&o.sha256sums, "sha256sums", nil, "digest list in sha256sum's format (as release pages publish); every file must match its digest before its seal is acknowledged. Names match files by path, as 'sha256sum -c' finds them: relative to the working directory or to the list's directory (for a model directory's files, also relative to it) (repeatable)")
	f.StringArrayVar(&o.expect, "expect-sha256", nil, "NAME=HEX: the SHA-256 the model file at path NAME (relative to the working directory, or inside the model directory) must have; a NAME that is no file given is an error (repeatable)")
	f.StringVar(&o.signature, "signature", "", "OpenSSF Model Signing bundle (model.sig, made by 'model_signing sign key'); verified offline with --public-key")
	f.StringVar(&o.publicKey, "public-key", "", "PEM public key (ECDSA P-256, P-384 or P-521) that made --signature")
	f.BoolVar(&o.allowUnlisted, "allow-unlisted", false, "seal model files that the digests or signature do not name, unchecked: each is logged as not checked and named in the ModelVerified record's uncovered")
	f.BoolVar(&o.allowUnsigned, "allow-unsigned-files", false, "let a signed model directory hold files the signature neither lists nor ignores (a modeling_*.py, a second tokenizer): they are not checked, and the ModelVerified record names them; without it they are refused, as 'model_signing verify' refuses extra files")
	f.BoolVar(&o.allowPartial, "allow-partial", false, "let a signature list files that are not there (not in the model directory, or not given); a listed file that is there is still checked")
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
func (o *identityOptions) load() (*model.Identity, error) {
	id := &model.Identity{}
	for _, path := range o.sha256sums {
		f, _, err := safefile.Open(path, safefile.Options{})
		if err != nil {
			return nil, usageErrorf("--sha256sums %s cannot be read (%v)", path, safefile.Cause(err))
		}
		list, err := model.ReadDigestList(f, path)
		f.Close()
		if err == nil {
			err = list.RelativeTo(path)
		}
		if err != nil {
			return nil, usageErrorf("--sha256sums: %v", err)
		}
		id.AddList("--sha256sums "+path, list, false)
	}
	if len(o.expect) > 0 {
		list := model.NewDigestList()
		for _, v := range o.expect {
			name, sum, err := model.ParseExpectSHA256(v)
			if err == nil {
				err = list.Add(name, sum, "--expect-sha256")
			}
			if err != nil {
				return nil, usageErrorf("%v", err)
			}
		}
		id.AddList("--expect-sha256", list, true)
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
	key, err := model.ParsePublicKey(pemBytes)
	if err != nil {
		return nil, usageErrorf("--public-key %s: %v", o.publicKey, err)
	}
	bundle, err := safefile.ReadFile(o.signature, maxSignatureBytes)
	if err != nil {
		return nil, usageErrorf("--signature %s cannot be read (%v)", o.signature, safefile.Cause(err))
	}
	m, err := model.VerifyModelSignature(bundle, key, o.signature)
	if err != nil {
		return nil, identityError(err)
	}
	id.AddSignature("--signature "+o.signature, o.signature, m, !o.allowPartial)
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
