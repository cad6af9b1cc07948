package model

import (
	"bytes"
	"io"
)

// headerGuard reads a safetensors file for its seal and fails the read if
// the header streamed differs from the one checked when the file was
// opened, so a file rewritten in between cannot seal under a stale table.
type headerGuard struct {
	r    io.Reader
	want []byte // the header not yet compared
	path string
	// changed is the error once the header differed; later reads return it.
	changed *FileError
}

// Read reads from the file and compares what it read of the header.
func (g *headerGuard) Read(p []byte) (int, error) {
	if g.changed != nil {
		return 0, g.changed
	}
	n, err := g.r.Read(p)
	if len(g.want) > 0 && n > 0 {
		k := min(n, len(g.want))
		if !bytes.Equal(p[:k], g.want[:k]) {
			g.changed = &FileError{Path: g.path, Problem: "changed while it was being sealed: its header is not the one checked; seal it once nothing rewrites it"}
			return 0, g.changed
		}
		g.want = g.want[k:]
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
