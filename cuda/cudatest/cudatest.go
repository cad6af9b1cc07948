// Package cudatest is the contract every cuda.Device implementation passes:
// one suite, run against the simulated GPU and against real hardware alike.
// It keeps its allocations small (KiB to a few MiB) so it runs quickly on a
// real GPU too.
package cudatest

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
)

// outstandingReporter is implemented by devices that can count their live
// allocations; the suite then checks that Close leaves none.
type outstandingReporter interface {
	Outstanding() int
}

// Run runs the Device contract as subtests of t. newDevice must return a
// fresh, empty device each time it is called; the suite closes it. If the
// device also has an Outstanding() int method, the suite checks it reports
// no allocations after Close; if it has an AllocationGranularity() int64
// method, the free-memory checks allow one page of that size. The hashing
// tests run on devices that are a
// cuda.ChunkHasher (or cuda.SpanHasher) and skip on others.
func Run(t *testing.T, newDevice func(t *testing.T) cuda.Device) {
	t.Helper()
	open := func(t *testing.T) cuda.Device {
		t.Helper()
		d := newDevice(t)
		require.NotNil(t, d, "newDevice returned nil")
		t.Cleanup(func() { assert.NoError(t, d.Close(), "closing the device") })
		return d
	}
	for _, tc := range []struct {
		name string
		test func(t *testing.T, d cuda.Device)
	}{
		{"properties", testProperties},
		{"meminfo follows allocations", testMemInfoFollowsAllocations},
		{"invalid allocation sizes", testInvalidAllocationSizes},
		{"allocation larger than memory", testAllocationLargerThanMemory},
		{"many allocations", testManyAllocations},
		{"handles are not reused", testHandlesNotReused},
		{"round trip", testRoundTrip},
		{"zero-length copies", testZeroLengthCopies},
		{"out of bounds copies", testOutOfBoundsCopies},
		{"unknown handles", testUnknownHandles},
		{"freed handles", testFreedHandles},
		{"concurrent copies", testConcurrentCopies},
		{"hash chunks", testHashChunks},
		{"hash chunks refuses", testHashChunksRefuses},
		{"concurrent hashing", testConcurrentHashing},
		{"hash spans", testHashSpans},
		{"hash spans racing frees", testHashSpansRacingFrees},
		{"share", testShare},
		{"close", testClose},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, open(t)) })
	}
}

// Pattern returns n pseudo-random bytes that depend on seed alone, so that
// misplaced or stale bytes are caught by comparison.
func Pattern(seed uint64, n int64) []byte {
	p := make([]byte, n)
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	_, _ = rand.NewChaCha8(key).Read(p) // ChaCha8.Read never fails.
	return p
}

// allocate allocates size bytes, failing the test if it cannot.
func allocate(t *testing.T, d cuda.Device, size int64) cuda.Handle {
	t.Helper()
	h, err := d.Allocate(size)
	require.NoError(t, err, "allocating %d bytes", size)
	return h
}

// readAll reads size bytes from the start of the allocation.
func readAll(t *testing.T, d cuda.Device, h cuda.Handle, size int64) []byte {
	t.Helper()
	got := make([]byte, size)
	require.NoError(t, d.Read(h, 0, got), "reading back %d bytes", size)
	return got
}

// freeMemory returns MemInfo's free bytes.
func freeMemory(t *testing.T, d cuda.Device) int64 {
	t.Helper()
	free, _, err := d.MemInfo()
	require.NoError(t, err, "MemInfo")
	return free
}
