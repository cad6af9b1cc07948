package cudatest

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
)

// testProperties checks the device describes itself sanely.
func testProperties(t *testing.T, d cuda.Device) {
	props := d.Properties()
	assert.NotEmpty(t, props.Name, "name")
	assert.Positive(t, props.TotalMemory, "total memory")
	assert.Positive(t, props.ComputeMajor, "compute capability major")
	assert.GreaterOrEqual(t, props.ComputeMinor, 0, "compute capability minor")

	free, total, err := d.MemInfo()
	require.NoError(t, err)
	assert.Positive(t, total, "MemInfo total")
	assert.GreaterOrEqual(t, free, int64(0), "MemInfo free")
	assert.LessOrEqual(t, free, total, "MemInfo free <= total")
}

// testMemInfoFollowsAllocations checks free memory drops by the
// allocation's size and comes back when it is freed, within one page of the
// device's allocation granularity either way.
func testMemInfoFollowsAllocations(t *testing.T, d cuda.Device) {
	page := pageSlack(d)
	size := max(int64(1<<20), 2*page) // more than a page, so the drop shows
	before := freeMemory(t, d)
	require.GreaterOrEqual(t, before, size, "the device needs %d bytes free", size)

	h := allocate(t, d, size)
	allocated := freeMemory(t, d)
	assert.LessOrEqual(t, allocated, before-size+page, "free memory after allocating %d bytes", size)

	require.NoError(t, d.Free(h))
	freed := freeMemory(t, d)
	assert.GreaterOrEqual(t, freed, allocated+size-page, "free memory after freeing %d bytes", size)
}

// testInvalidAllocationSizes checks sizes that are not positive are refused
// and reserve nothing.
func testInvalidAllocationSizes(t *testing.T, d cuda.Device) {
	before := freeMemory(t, d)
	for _, size := range []int64{0, -1, math.MinInt64} {
		h, err := d.Allocate(size)
		assert.ErrorIs(t, err, messages.ErrInvalidInput, "Allocate(%d)", size)
		assert.Zero(t, h, "Allocate(%d) handle", size)
	}
	assertNothingHeld(t, d, before)
}

// testAllocationLargerThanMemory checks an allocation beyond the device's
// memory is refused as insufficient VRAM.
func testAllocationLargerThanMemory(t *testing.T, d cuda.Device) {
	total := d.Properties().TotalMemory
	require.Positive(t, total)
	before := freeMemory(t, d)
	for _, tc := range []struct {
		name string
		size int64
	}{
		{"one byte more than total", total + 1},
		{"largest size", math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := d.Allocate(tc.size)
			assert.ErrorIs(t, err, messages.ErrInsufficientVRAM)
			assert.Zero(t, h, "handle")
		})
	}
	assertNothingHeld(t, d, before)
}

// testManyAllocations checks many live allocations get distinct handles and
// keep independent contents: 64 of them, or as many as fit in half the
// free memory on a device that gives each a page of its granularity.
func testManyAllocations(t *testing.T, d cuda.Device) {
	before := freeMemory(t, d)
	count := 64
	if page := pageSlack(d); page > 0 {
		count = int(min(int64(count), before/2/page))
	}
	require.GreaterOrEqual(t, count, 8, "the device needs room for 8 allocations")
	handles := make([]cuda.Handle, count)
	contents := make([][]byte, count)
	seen := make(map[cuda.Handle]bool, count)
	for i := range count {
		size := int64(4<<10 + i)
		handles[i] = allocate(t, d, size)
		require.NotZero(t, handles[i], "allocation %d handle", i)
		require.False(t, seen[handles[i]], "allocation %d reuses handle %d", i, handles[i])
		seen[handles[i]] = true
		contents[i] = Pattern(uint64(i), size)
		require.NoError(t, d.Write(handles[i], 0, contents[i]), "writing allocation %d", i)
	}
	for i, h := range handles {
		assert.Equal(t, contents[i], readAll(t, d, h, int64(len(contents[i]))), "allocation %d contents", i)
	}
	for i, h := range handles {
		require.NoError(t, d.Free(h), "freeing allocation %d", i)
	}
	assert.GreaterOrEqual(t, freeMemory(t, d), before-pageSlack(d), "free memory after freeing everything")
}

// testHandlesNotReused checks a freed handle is not handed out again.
func testHandlesNotReused(t *testing.T, d cuda.Device) {
	const rounds = 16
	seen := make(map[cuda.Handle]bool, rounds)
	for i := range rounds {
		h := allocate(t, d, 4<<10)
		assert.False(t, seen[h], "round %d reuses handle %d", i, h)
		seen[h] = true
		require.NoError(t, d.Free(h))
	}
}

// assertNothingHeld checks free memory has not dropped below before, by
// more than a page of the device's allocation granularity: refused
// allocations must reserve nothing.
func assertNothingHeld(t *testing.T, d cuda.Device, before int64) {
	t.Helper()
	assert.GreaterOrEqual(t, freeMemory(t, d), before-pageSlack(d), "free memory after refused allocations")
}

// granular is implemented by devices that hand out memory in pages: CUDA's
// allocator works in 2 MiB pages and packs small allocations into them, so
// its free memory moves in whole pages, not by each allocation's bytes.
type granular interface {
	AllocationGranularity() int64
}

// pageSlack is how far free memory may stray from byte-exact accounting
// on d: one page of its allocation granularity, or nothing on a device
// that accounts by the byte (the Sim).
func pageSlack(d cuda.Device) int64 {
	if g, ok := d.(granular); ok {
		return g.AllocationGranularity()
	}
	return 0
}
