package model

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"

	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/supervisor"
)

// Identity is what a model must be: the digests its files must hash to, from
// published digest lists and a verified OpenSSF Model Signing signature. The
// zero Identity asks nothing.
type Identity struct {
	sources  []expectationSource
	manifest *SignedManifest // the verified signature; nil without
	sigPath  string
	matched  int // files the signature covered, once attached
}

// expectationSource is one place that says what files must hash to.
type expectationSource struct {
	what       string // how messages name it, e.g. "--sha256sums sums.txt"
	list       Expectations
	requireAll bool // every file it lists must be sealed
	signed     bool // it is the verified signature
}

// AddList adds a digest list; what names it in messages.
func (id *Identity) AddList(what string, list Expectations) {
	id.sources = append(id.sources, expectationSource{what: what, list: list})
}

// AddSignature adds the manifest of a signature already verified
// (VerifyModelSignature), read from path; what names it in messages.
// With requireAll, every file it lists must be sealed or, in a model
// directory, checked on the host.
func (id *Identity) AddSignature(what, path string, m *SignedManifest, requireAll bool) {
	id.manifest, id.sigPath = m, path
	id.sources = append(id.sources, expectationSource{what: what, list: m, requireAll: requireAll, signed: true})
}

// Ignored reports whether the signature leaves rel out of the model.
func (id *Identity) Ignored(rel string) bool {
	return id.manifest != nil && id.manifest.Ignored(rel)
}

// Attach gives each source the check its bytes must pass while they stream:
// every expectation from every list that names it. A file a list does not
// name (unless allowUnlisted), or a file a requireAll signature lists that is
// neither among srcs nor in the model directory dir, is refused with
// messages.ErrModelRejected before anything is sealed. The files of dir that
// a list names but that are not sealed (config.json, the tokenizer) are
// hashed on the host now, and must match too; logger logs each. dir is nil
// when the files were named one by one.
func (id *Identity) Attach(srcs []*Source, dir *Dir, allowUnlisted bool, logger *slog.Logger) error {
	if len(id.sources) == 0 {
		return nil
	}
	names := make([]string, len(srcs))
	for i, s := range srcs {
		names[i] = s.RelName
	}
	exps := make([][]Expectation, len(srcs))
	onHost := map[string]*hostCheck{}
	var checks []*hostCheck
	for _, source := range id.sources {
		var present []string
		if dir != nil {
			present = dir.listedInDir(source.list, names)
		}
		if _, err := MatchFiles(source.list, append(slices.Clone(names), present...), source.what, allowUnlisted, source.requireAll); err != nil {
			return err
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
				c = &hostCheck{rel: n, path: filepath.Join(dir.Path, filepath.FromSlash(n))}
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
		m, err := NewMatcher(exps[i], src.Size)
		if err != nil {
			return fmt.Errorf("%s: %w", src.Name, err)
		}
		src.check = m
	}
	return runHostChecks(checks, logger)
}

// RecordVerified writes the ModelVerified audit record through rt once
// every file the signature covers has sealed and matched, and logs it;
// without a signature it does nothing.
func (id *Identity) RecordVerified(ctx context.Context, rt *supervisor.Runtime, logger *slog.Logger) error {
	if id == nil || id.manifest == nil {
		return nil
	}
	m := id.manifest
	if err := rt.RecordModelVerified(ctx, messages.ModelVerified{
		KeyFingerprint: m.KeyFingerprint, Subject: m.Subject, SubjectDigest: m.SubjectDigest,
		Method: m.Method, Source: id.sigPath, Files: id.matched,
	}); err != nil {
		return err
	}
	if logger != nil {
		logger.Info("model verified", "subject", m.Subject, "subject_digest", m.SubjectDigest, "method", m.Method,
			"key", ShortHex(m.KeyFingerprint), "files", id.matched)
	}
	return nil
}
