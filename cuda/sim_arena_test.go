package cuda

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSimArenaReusesAndMerges(t *testing.T) {
	a := newSimArena(100)
	x, ok := a.take(30)
	require.True(t, ok)
	y, ok := a.take(30)
	require.True(t, ok)
	z, ok := a.take(40)
	require.True(t, ok)
	assert.Equal(t, []simExtent{{0, 30}, {30, 30}, {60, 40}}, []simExtent{x, y, z}, "first fit, in order")
	assert.Empty(t, a.free, "the arena is full")
	_, ok = a.take(1)
	assert.False(t, ok, "a full arena has no room")

	a.give(x)
	a.give(z)
	assert.Equal(t, []simExtent{{0, 30}, {60, 40}}, a.free, "two holes")
	_, ok = a.take(50)
	assert.False(t, ok, "70 bytes free, but no 50 in one piece")
	a.give(y)
	assert.Equal(t, []simExtent{{0, 100}}, a.free, "freeing the middle merges both sides")

	w, ok := a.take(100)
	require.True(t, ok)
	assert.Len(t, a.bytes(w), 100)
	assert.Equal(t, 100, cap(a.bytes(w)), "an extent cannot grow into its neighbour")
}

func TestSimPrefaultCarvesFromTheArena(t *testing.T) {
	const capacity = 1 << 20
	s, err := NewSim(SimConfig{Capacity: capacity, Prefault: true})
	require.NoError(t, err)
	defer func() { assert.NoError(t, s.Close()) }()
	require.Len(t, s.arena.mem, capacity)

	memory := func(h Handle) simMemory {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.table.allocs[h].mem
	}
	quarter := int64(capacity / 4)
	var hs []Handle
	for range 4 {
		h, err := s.Allocate(quarter)
		require.NoError(t, err)
		hs = append(hs, h)
		assert.True(t, memory(h).inArena, "allocation %d comes from the arena", h)
	}
	require.NoError(t, s.Free(hs[1]))
	h, err := s.Allocate(quarter)
	require.NoError(t, err)
	assert.Equal(t, simExtent{quarter, quarter}, memory(h).extent, "freed space is reused")

	require.NoError(t, s.Free(hs[0]))
	require.NoError(t, s.Free(hs[2]))
	h, err = s.Allocate(2 * quarter)
	require.NoError(t, err, "the capacity allows it although the arena has no such hole")
	assert.False(t, memory(h).inArena, "fragmentation falls back to fresh memory")
	p := []byte("fresh memory works")
	require.NoError(t, s.Write(h, 2*quarter-int64(len(p)), p))
}
