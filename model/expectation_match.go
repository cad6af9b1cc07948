package model

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"slices"
	"strings"

	"github.com/vramseal/vramseal/messages"
)

// Matcher checks a stream against expectations while it is written: range
// digests are hashed from the bytes as they pass, with no copy, and the
// whole digest is taken from the seal's own Digester. It is not safe for
// concurrent use.
type Matcher struct {
	exps []Expectation
	// ranges are every expectation's ranges, ordered by start.
	ranges []matchRange
	next   int   // index of the first range not yet complete
	at     int64 // bytes written so far
}

type matchRange struct {
	exp int // index in exps
	RangeDigest
	h      hash.Hash // nil until the range's first byte is written
	actual string    // hex digest once the range is complete
}

// NewMatcher returns a Matcher for a stream of size bytes, after checking
// every expectation against size (see Expectation.Check).
func NewMatcher(exps []Expectation, size int64) (*Matcher, error) {
	m := &Matcher{exps: exps}
	for i, e := range exps {
		if err := e.Check(size); err != nil {
			return nil, err
		}
		for _, r := range e.Ranges {
			m.ranges = append(m.ranges, matchRange{exp: i, RangeDigest: r})
		}
	}
	slices.SortStableFunc(m.ranges, func(a, b matchRange) int { return cmp.Compare(a.Start, b.Start) })
	return m, nil
}

// Write hashes p into every range it overlaps. It never fails.
func (m *Matcher) Write(p []byte) (int, error) {
	begin, end := m.at, m.at+int64(len(p))
	for i := m.next; i < len(m.ranges) && m.ranges[i].Start < end; i++ {
		r := &m.ranges[i]
		if r.actual != "" || r.End <= begin {
			continue
		}
		if r.h == nil {
			r.h = sha256.New()
		}
		lo, hi := max(r.Start, begin), min(r.End, end)
		r.h.Write(p[lo-begin : hi-begin])
		if hi == r.End {
			r.actual = hex.EncodeToString(r.h.Sum(nil))
			r.h = nil
		}
	}
	for m.next < len(m.ranges) && m.ranges[m.next].actual != "" {
		m.next++
	}
	m.at = end
	return len(p), nil
}

// Result compares every expectation with whole, the hex SHA-256 of the whole
// stream, and with the range digests written. It returns nil if all match,
// and otherwise a *RejectedError for the first difference.
func (m *Matcher) Result(whole string) error {
	for _, e := range m.exps {
		if e.SHA256 != "" && !strings.EqualFold(e.SHA256, whole) {
			return &messages.RejectedError{File: e.Name, Source: e.Source, Expected: e.SHA256, Actual: whole}
		}
	}
	for _, r := range m.ranges {
		if r.actual != r.SHA256 {
			e := m.exps[r.exp]
			actual := r.actual
			if actual == "" {
				actual = "(not reached)"
			}
			return &messages.RejectedError{File: e.Name, Source: e.Source, Expected: r.SHA256, Actual: actual, Start: r.Start, End: r.End}
		}
	}
	return nil
}
