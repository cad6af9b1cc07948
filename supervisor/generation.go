package supervisor

import (
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
)

// generations hands out shard generations unique over the worker's life and,
// with overwhelming probability, across its restarts: each runtime counts up
// from a random 64-bit start, so two runs' ranges overlap only if their
// starts fall within the number of seals of each other (chance about
// seals/2^64). A clock would repeat after the clock is set back; a counter
// persisted on disk would need a file the worker may not have.
type generations struct{ last atomic.Uint64 }

func newGenerations() *generations {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	g := &generations{}
	g.last.Store(binary.BigEndian.Uint64(b[:]))
	return g
}

// next returns a generation never returned before; never zero.
func (g *generations) next() uint64 {
	for {
		if n := g.last.Add(1); n != 0 {
			return n
		}
	}
}
