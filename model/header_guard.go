package model

import (
	"bytes"
	"crypto/sha256"
	"hash"
	"io"
)

// headerGuard reads a safetensors file for its seal and fails the read if
// the header streamed differs from the one checked when the file was
// opened, so a file rewritten in between cannot seal under a stale table.
// It keeps the checked header's digest, not its bytes (a header may be
// 100 MB, and a model has many files open at once), and compares once the
// header has streamed, before any byte after it is returned.
type headerGuard struct {
	r    io.Reader
	want [sha256.Size]byte // digest of the header checked
	left int64             // header bytes not yet streamed
	h    hash.Hash
	path string
	// changed is the error once the header differed; later reads return it.
	changed *FileError
}

// newHeaderGuard guards r, whose first n bytes must hash to want.
func newHeaderGuard(r io.Reader, want [sha256.Size]byte, n int64, path string) *headerGuard {
	return &headerGuard{r: r, want: want, left: n, h: sha256.New(), path: path}
}

// Read reads from the file and hashes what it read of the header.
func (g *headerGuard) Read(p []byte) (int, error) {
	if g.changed != nil {
		return 0, g.changed
	}
	n, err := g.r.Read(p)
	if g.left > 0 && n > 0 {
		k := min(int64(n), g.left)
		g.h.Write(p[:k])
		if g.left -= k; g.left == 0 && !bytes.Equal(g.h.Sum(nil), g.want[:]) {
			g.changed = &FileError{Path: g.path, Problem: "changed while it was being sealed: its header is not the one checked; seal it once nothing rewrites it"}
			return 0, g.changed
		}
	}
	if g.left > 0 && err == io.EOF {
		g.changed = &FileError{Path: g.path, Problem: "changed while it was being sealed: it ends inside the header checked; seal it once nothing rewrites it"}
		return 0, g.changed
	}
	return n, err
}

// changedWhileSealed is the error of a source whose file changed under its
// seal (see headerGuard), or nil. The runtime reports a failed read in its
// own words; this is the cause, the same kind as a file swapped at open.
func (s *Source) changedWhileSealed() error {
	if g, ok := s.data.(*headerGuard); ok && g.changed != nil {
		return g.changed
	}
	return nil
}
