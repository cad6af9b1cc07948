package cuda

import (
	"cmp"
	"os"
	"slices"
)

// simArena is host memory faulted in when a Sim is made (SimConfig.Prefault):
// allocations are carved from it and freed space is reused, so that no
// allocation pays the host's first-touch page faults. It is guarded by
// Sim.mu.
type simArena struct {
	mem []byte
	// free lists the unused extents in offset order, never two adjacent.
	free []simExtent
}

// simExtent is a span of the arena.
type simExtent struct {
	off, size int64
}

// newSimArena returns size bytes of host memory with every page written
// once, so the host has backed each with real memory.
func newSimArena(size int64) *simArena {
	mem := make([]byte, size)
	page := os.Getpagesize()
	for i := 0; i < len(mem); i += page {
		mem[i] = 0
	}
	return &simArena{mem: mem, free: []simExtent{{0, size}}}
}

// take carves size bytes from the first free extent large enough. It
// reports false when fragmentation leaves none, though the free bytes in
// all may be enough.
func (a *simArena) take(size int64) (simExtent, bool) {
	for i, e := range a.free {
		if e.size < size {
			continue
		}
		if e.size == size {
			a.free = slices.Delete(a.free, i, i+1)
		} else {
			a.free[i] = simExtent{e.off + size, e.size - size}
		}
		return simExtent{e.off, size}, true
	}
	return simExtent{}, false
}

// give returns an extent from take, merging it with its free neighbours.
func (a *simArena) give(x simExtent) {
	i, _ := slices.BinarySearchFunc(a.free, x.off, func(e simExtent, off int64) int { return cmp.Compare(e.off, off) })
	if i < len(a.free) && x.off+x.size == a.free[i].off {
		x.size += a.free[i].size
		a.free = slices.Delete(a.free, i, i+1)
	}
	if i > 0 && a.free[i-1].off+a.free[i-1].size == x.off {
		a.free[i-1].size += x.size
		return
	}
	a.free = slices.Insert(a.free, i, x)
}

// bytes returns the extent's memory.
func (a *simArena) bytes(x simExtent) []byte {
	return a.mem[x.off : x.off+x.size : x.off+x.size]
}
