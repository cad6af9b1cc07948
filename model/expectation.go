package model

import (
	"fmt"

	"github.com/vramseal/vramseal/internal/untrusted"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// Expectation is what a file's bytes must hash to before its seal is
// acknowledged, and who says so: a published digest list, a flag, or a
// signed manifest.
type Expectation struct {
	// Name is the file as the source names it.
	Name string
	// Source says where the expectation comes from, e.g.
	// "sha256sums.txt line 3" or "signature model.sig".
	Source string
	// SHA256 is the hex SHA-256 the whole file must have; empty when only
	// Ranges are given.
	SHA256 string
	// Ranges are byte ranges with their own digests, which together cover
	// the file from 0 to its end in order; nil when only SHA256 is given.
	Ranges []RangeDigest
}

// RangeDigest is the SHA-256 a byte range [Start, End) of a file must have.
type RangeDigest struct {
	Start, End int64
	SHA256     string
}

// Check checks that e can be checked against a file of size bytes: it has
// a whole digest or ranges, its digests are 64 lowercase hex digits, and its
// ranges tile [0, size) in order. The error wraps messages.ErrInvalidInput.
func (e Expectation) Check(size int64) error {
	if e.SHA256 == "" && e.Ranges == nil {
		return fmt.Errorf("%w: %s: no digest expected for %s", messages.ErrInvalidInput, e.Source, untrusted.Quote(e.Name))
	}
	if e.SHA256 != "" {
		if err := sealer.ValidateHexSum("expected SHA-256", e.SHA256); err != nil {
			return fmt.Errorf("%s: %s: %w", e.Source, untrusted.Quote(e.Name), err)
		}
	}
	if e.Ranges == nil {
		return nil
	}
	var at int64
	for _, r := range e.Ranges {
		if err := sealer.ValidateHexSum("expected SHA-256", r.SHA256); err != nil {
			return fmt.Errorf("%s: %s: %w", e.Source, untrusted.Quote(e.Name), err)
		}
		if r.Start != at || r.End <= r.Start {
			return fmt.Errorf("%w: %s: the ranges of %s do not cover the file in order: [%d, %d) where %d was next",
				messages.ErrInvalidInput, e.Source, untrusted.Quote(e.Name), r.Start, r.End, at)
		}
		at = r.End
	}
	if at != size {
		return fmt.Errorf("%w: %s: the ranges of %s cover %d bytes, but the file is %d bytes",
			messages.ErrModelRejected, e.Source, untrusted.Quote(e.Name), at, size)
	}
	return nil
}

// Expectations is a source of expected digests by file name: a DigestList
// or a SignedManifest.
type Expectations interface {
	// Lookup returns the expectation for the file called name.
	Lookup(name string) (Expectation, bool)
	// Names returns every file the source lists.
	Names() []string
}

// matchFiles pairs each file to seal, named as the source names files, with
// its expectation from src. A file src does not list is an error wrapping
// messages.ErrModelRejected unless allowUnlisted; so, when requireAll, is a
// file src lists that is not among names (a model sealed in part). what
// names the source in messages, e.g. "--sha256sums sums.txt".
func matchFiles(src Expectations, names []string, what string, allowUnlisted, requireAll bool) (map[string]Expectation, error) {
	out := map[string]Expectation{}
	for _, n := range names {
		e, ok := src.Lookup(n)
		if !ok {
			if allowUnlisted {
				continue
			}
			return nil, &RefusedError{Files: []string{n}, Source: what, Problem: fmt.Sprintf("%s lists no digest for %+q; pass --allow-unlisted to seal it unchecked", what, n)}
		}
		out[cleanListName(n)] = e
	}
	if requireAll {
		for _, n := range src.Names() {
			if _, ok := out[n]; !ok {
				return nil, &RefusedError{Files: []string{n}, Source: what, Problem: fmt.Sprintf("%s lists %+q, which is not being sealed; pass --allow-partial to seal part of the model", what, n)}
			}
		}
	}
	return out, nil
}
