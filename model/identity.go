package model

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"

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
	// uncovered are the files of the model the signature does not cover,
	// let through by AttachOptions; the ModelVerified record names them.
	uncovered []string
}

// AttachOptions say what Identity.Attach lets through that it would refuse.
type AttachOptions struct {
	// AllowUnlisted seals files that a list or the signature does not name,
	// unchecked (--allow-unlisted).
	AllowUnlisted bool
	// AllowUnsigned lets a signed model directory hold files, not sealed,
	// that the signature neither lists nor ignores (--allow-unsigned-files).
	AllowUnsigned bool
	// Logger logs each file checked on the host and each let through.
	Logger *slog.Logger
}

// expectationSource is one place that says what files must hash to.
type expectationSource struct {
	what       string // how messages name it, e.g. "--sha256sums sums.txt"
	list       Expectations
	digests    *DigestList // list, when it is a digest list: matched by path
	requireAll bool        // every file it lists must be sealed
	everyEntry bool        // every entry must name a file (--expect-sha256)
	signed     bool        // it is the verified signature
}

// AddList adds a digest list; what names it in messages. With everyEntry,
// an entry that names no file given (a typo) is an error, not a check that
// silently never runs.
func (id *Identity) AddList(what string, list *DigestList, everyEntry bool) {
	id.sources = append(id.sources, expectationSource{what: what, list: list, digests: list, everyEntry: everyEntry})
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
// name (unless o.AllowUnlisted), a file a requireAll signature lists that is
// neither among srcs nor in the model directory dir, or a file of a signed
// dir that the signature neither lists nor ignores (unless o.AllowUnsigned;
// see unsignedFiles), is refused with messages.ErrModelRejected before
// anything is sealed. The files of dir that a list names but that are not
// sealed (config.json, the tokenizer) are hashed on the host now, and must
// match too. dir is nil when the files were named one by one.
func (id *Identity) Attach(srcs []*Source, dir *Dir, o AttachOptions) error {
	logger := o.Logger
	allowUnlisted := o.AllowUnlisted
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
		used := map[string]bool{}
		for _, n := range present {
			used[n] = true
		}
		if source.digests == nil {
			if _, err := matchFiles(source.list, append(slices.Clone(names), present...), source.what, allowUnlisted, source.requireAll); err != nil {
				return err
			}
		}
		for i, src := range srcs {
			found := source.find(src.Name, src.RelName, dir != nil)
			if len(found) == 0 && source.digests != nil && !allowUnlisted {
				return unlistedError(source.what, src.Name)
			}
			for _, e := range found {
				used[e.Name] = true
				if source.signed {
					id.matched++
				}
			}
			exps[i] = append(exps[i], found...)
		}
		for _, n := range source.list.Names() {
			switch {
			case used[n]:
			case source.everyEntry:
				return fmt.Errorf("%w: %s names %+q, which is no model file given; check the path (relative to the working directory)",
					messages.ErrInvalidInput, source.what, n)
			case logger != nil && !source.signed:
				logger.Warn("a digest list entry names no model file given", "list", source.what, "entry", n)
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
	if err := id.coverage(names, dir, o); err != nil {
		return err
	}
	for i, src := range srcs {
		if logger != nil {
			logShardCheck(logger, src, exps[i])
		}
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

// find returns the expectations of the source for the model file at path:
// a digest list's entries that name that path, or the signature's entry for
// rel, its name in the model directory.
func (s expectationSource) find(path, rel string, inDir bool) []Expectation {
	if s.digests != nil {
		return s.digests.find(path, rel, inDir)
	}
	if e, ok := s.list.Lookup(rel); ok {
		return []Expectation{e}
	}
	return nil
}

// unlistedError refuses the model file path, which the source what does
// not name.
func unlistedError(what, path string) error {
	return &RefusedError{Files: []string{path}, Source: what, Problem: fmt.Sprintf(
		"%s lists no digest for %+q (names are matched as sha256sum -c reads them: relative to the working directory, to the list's directory, or inside the model directory); pass --allow-unlisted to seal it unchecked", what, path)}
}

// CheckListed refuses, with messages.ErrModelRejected and before any file
// is opened or read, a model file that a digest list or the signature does
// not name (unless allowUnlisted): Attach would refuse it too, but only
// after every file's header had been read. paths are the files as given,
// or those of the model directory dir (nil when they were given one by
// one).
func (id *Identity) CheckListed(paths []string, dir *Dir, allowUnlisted bool) error {
	if allowUnlisted {
		return nil
	}
	for _, p := range paths {
		rel := filepath.Base(p)
		for _, s := range id.sources {
			if len(s.find(p, rel, dir != nil)) > 0 {
				continue
			}
			if s.digests == nil {
				return unlistedError(s.what, rel) // the signature names files inside the directory
			}
			return unlistedError(s.what, p)
		}
	}
	return nil
}

// logShardCheck logs what a model file will be checked against as it
// seals (each list and line, --expect-sha256, the signature), or that it
// will not be.
func logShardCheck(logger *slog.Logger, src *Source, exps []Expectation) {
	if len(exps) == 0 {
		logger.Warn("model file not checked: no digest list or signature names it (--allow-unlisted)", "file", src.Name)
		return
	}
	by := make([]string, len(exps))
	for i, e := range exps {
		by[i] = e.Source
	}
	logger.Info("model file checked against", "file", src.Name, "by", strings.Join(by, "; "))
}

// coverage finds the files of the model the signature does not cover: in a
// directory, every file the signature neither lists nor ignores; else the
// sealed files it does not list. Those that are not sealed are refused
// unless o.AllowUnsigned (sealed ones were refused unless o.AllowUnlisted).
func (id *Identity) coverage(sealed []string, dir *Dir, o AttachOptions) error {
	if id.manifest == nil {
		return nil
	}
	var uncovered []string
	if dir != nil {
		var err error
		if uncovered, err = dir.unsignedFiles(id.manifest, id.sigPath); err != nil {
			return err
		}
		var extra []string
		for _, f := range uncovered {
			if !slices.Contains(sealed, f) {
				extra = append(extra, f)
			}
		}
		if len(extra) > 0 && !o.AllowUnsigned {
			return unsignedError("the signature "+id.sigPath, extra)
		}
	} else {
		for _, n := range sealed {
			if _, ok := id.manifest.Lookup(n); !ok {
				uncovered = append(uncovered, n)
			}
		}
	}
	for _, f := range uncovered {
		if o.Logger != nil {
			o.Logger.Warn("not covered by the signature, let through unchecked", "file", f)
		}
	}
	id.uncovered = uncovered
	return nil
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
		Method: m.Method, Source: id.sigPath, Files: id.matched, Uncovered: id.uncovered,
	}); err != nil {
		return err
	}
	if logger != nil {
		logger.Info("model verified", "subject", m.Subject, "subject_digest", m.SubjectDigest, "method", m.Method,
			"key", shortHex(m.KeyFingerprint), "files", id.matched, "uncovered", len(id.uncovered))
	}
	return nil
}
