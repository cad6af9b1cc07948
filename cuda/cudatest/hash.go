package cudatest

import (
	"crypto/sha256"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
)

// hashSize is an odd size a little over 1 MiB: every chunk size below ends
// with a short chunk.
const hashSize = 1<<20 + 13

// hasher returns d's ChunkHasher, or skips a test of a device without one.
func hasher(t *testing.T, d cuda.Device) cuda.ChunkHasher {
	t.Helper()
	hs, ok := d.(cuda.ChunkHasher)
	if !ok {
		t.Skip("the device does not hash in place")
	}
	return hs
}

// ChunkSums is what HashChunks must return for p: crypto/sha256 of each
// chunk of chunkSize bytes, the last one short; empty p has no chunks.
func ChunkSums(p []byte, chunkSize int64) [][sha256.Size]byte {
	sums := [][sha256.Size]byte{}
	for off := int64(0); off < int64(len(p)); off += chunkSize {
		sums = append(sums, sha256.Sum256(p[off:min(off+chunkSize, int64(len(p)))]))
	}
	return sums
}

// testHashChunks checks digests of spans at awkward offsets and lengths,
// around SHA-256's padding edges, with one chunk or many, equal
// crypto/sha256 of the same bytes.
func testHashChunks(t *testing.T, d cuda.Device) {
	hs := hasher(t, d)
	h := allocate(t, d, hashSize)
	data := Pattern(20, hashSize)
	require.NoError(t, d.Write(h, 0, data))

	for _, tc := range []struct {
		name                string
		offset, length, chk int64
	}{
		{"whole, 64 KiB chunks", 0, hashSize, 64 << 10},
		{"whole, 256 KiB chunks", 0, hashSize, 256 << 10},
		{"whole, one chunk larger than the span", 0, hashSize, 4 << 20},
		{"chunk-aligned offset", 64 << 10, hashSize - 64<<10, 64 << 10},
		{"odd offset", 13, 300 << 10, 64 << 10},
		{"one byte", hashSize - 1, 1, 64 << 10},
		{"55 bytes", 7, 55, 64 << 10},
		{"56 bytes", 7, 56, 64 << 10},
		{"64 bytes", 7, 64, 64 << 10},
		{"three blocks in chunks of 64 bytes and a short one", 1, 3*64 + 9, 64},
		{"odd chunk size", 3, 10000, 1000},
		{"tail", hashSize - 100, 100, 64 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := hs.HashChunks(h, tc.offset, tc.length, tc.chk)
			require.NoError(t, err)
			assert.Equal(t, ChunkSums(data[tc.offset:tc.offset+tc.length], tc.chk), got)
		})
	}
	t.Run("empty span", func(t *testing.T) {
		for _, offset := range []int64{0, hashSize} {
			got, err := hs.HashChunks(h, offset, 0, 64<<10)
			require.NoError(t, err, "at %d", offset)
			assert.Empty(t, got, "no chunks at %d", offset)
		}
	})
	t.Run("a changed byte changes its chunk only", func(t *testing.T) {
		const chunk = 64 << 10
		before, err := hs.HashChunks(h, 0, hashSize, chunk)
		require.NoError(t, err)
		const at = 5*chunk + 77
		require.NoError(t, d.Write(h, at, []byte{data[at] ^ 0x10}))
		after, err := hs.HashChunks(h, 0, hashSize, chunk)
		require.NoError(t, err)
		for i := range before {
			if i == at/chunk {
				assert.NotEqual(t, before[i], after[i], "chunk %d holds the changed byte", i)
			} else {
				assert.Equal(t, before[i], after[i], "chunk %d is unchanged", i)
			}
		}
	})
	require.NoError(t, d.Free(h))
}

// testHashChunksRefuses checks bad chunk sizes, out of bounds spans and
// unknown or freed handles are refused.
func testHashChunksRefuses(t *testing.T, d cuda.Device) {
	hs := hasher(t, d)
	const size = 4 << 10
	h := allocate(t, d, size)
	for _, chunk := range []int64{0, -1, math.MinInt64} {
		_, err := hs.HashChunks(h, 0, size, chunk)
		assert.ErrorIs(t, err, messages.ErrInvalidInput, "chunk size %d", chunk)
	}
	for _, tc := range []struct {
		name           string
		offset, length int64
	}{
		{"negative offset", -1, 1},
		{"negative length", 0, -1},
		{"starts at the end", size, 1},
		{"runs past the end", size - 1, 2},
		{"longer than the allocation", 0, size + 1},
		{"end overflows int64", math.MaxInt64 - 1, 2},
	} {
		_, err := hs.HashChunks(h, tc.offset, tc.length, 64<<10)
		assert.ErrorIs(t, err, messages.ErrInvalidInput, tc.name)
	}
	for _, unknown := range []cuda.Handle{0, h + 1, math.MaxUint64} {
		_, err := hs.HashChunks(unknown, 0, 1, 64<<10)
		assert.ErrorIs(t, err, messages.ErrInvalidInput, "unknown handle %d", unknown)
	}
	require.NoError(t, d.Free(h))
	_, err := hs.HashChunks(h, 0, 1, 64<<10)
	assert.ErrorIs(t, err, messages.ErrInvalidInput, "freed handle")
}

// testConcurrentHashing hashes distinct allocations at once while others
// are written and freed; every digest must be right. Run it with -race.
func testConcurrentHashing(t *testing.T, d cuda.Device) {
	hs := hasher(t, d)
	const (
		workers = 6
		rounds  = 8
		size    = 256 << 10
		chunk   = 64 << 10
	)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				h, err := d.Allocate(size)
				if !assert.NoError(t, err, "worker %d allocate", w) {
					return
				}
				want := Pattern(uint64(1000+w*rounds+r), size)
				if assert.NoError(t, d.Write(h, 0, want), "worker %d write", w) {
					got, err := hs.HashChunks(h, 0, size, chunk)
					assert.NoError(t, err, "worker %d round %d hash", w, r)
					assert.Equal(t, ChunkSums(want, chunk), got, "worker %d round %d digests", w, r)
				}
				assert.NoError(t, d.Free(h), "worker %d free", w)
			}
		})
	}
	wg.Wait()
}

// spanHasher returns d's SpanHasher, or skips a test of a device without one.
func spanHasher(t *testing.T, d cuda.Device) cuda.SpanHasher {
	t.Helper()
	hs, ok := d.(cuda.SpanHasher)
	if !ok {
		t.Skip("the device does not hash spans of many allocations")
	}
	return hs
}

// testHashSpans checks spans of several allocations in one call, some
// naming the same allocation, overlapping or empty, with different chunk
// sizes, each hash as HashChunks would, and that one bad span fails all.
func testHashSpans(t *testing.T, d cuda.Device) {
	hs := spanHasher(t, d)
	sizes := []int64{300<<10 + 1, 64 << 10, 1<<20 + 7}
	handles := make([]cuda.Handle, len(sizes))
	data := make([][]byte, len(sizes))
	for i, size := range sizes {
		handles[i] = allocate(t, d, size)
		data[i] = Pattern(uint64(30+i), size)
		require.NoError(t, d.Write(handles[i], 0, data[i]))
	}
	spans := []cuda.Span{
		{Handle: handles[2], Offset: 0, Length: sizes[2], ChunkSize: 64 << 10},
		{Handle: handles[0], Offset: 5, Length: 200 << 10, ChunkSize: 4 << 10},
		{Handle: handles[1], Offset: 0, Length: 0, ChunkSize: 64 << 10},
		{Handle: handles[0], Offset: 100 << 10, Length: 200<<10 + 1, ChunkSize: 64 << 10},
		{Handle: handles[1], Offset: 1, Length: 63, ChunkSize: 7},
		{Handle: handles[2], Offset: 7, Length: 1 << 20, ChunkSize: 1 << 20},
	}
	got, err := hs.HashSpans(spans)
	require.NoError(t, err)
	require.Len(t, got, len(spans))
	for i, s := range spans {
		k := slices.Index(handles, s.Handle)
		assert.Equal(t, ChunkSums(data[k][s.Offset:s.Offset+s.Length], s.ChunkSize), got[i], "span %d", i)
	}
	none, err := hs.HashSpans(nil)
	require.NoError(t, err)
	assert.Empty(t, none, "no spans")

	for _, bad := range []cuda.Span{
		{Handle: handles[1], Offset: 1, Length: 64 << 10, ChunkSize: 64 << 10},
		{Handle: handles[1], Offset: 0, Length: 1, ChunkSize: 0},
		{Handle: 0, Offset: 0, Length: 1, ChunkSize: 64 << 10},
	} {
		_, err := hs.HashSpans([]cuda.Span{spans[0], bad})
		assert.ErrorIs(t, err, messages.ErrInvalidInput, "bad span %+v", bad)
	}
	require.NoError(t, d.Free(handles[1]))
	_, err = hs.HashSpans(spans[:2])
	assert.NoError(t, err, "spans of live allocations")
	_, err = hs.HashSpans(spans)
	assert.ErrorIs(t, err, messages.ErrInvalidInput, "a span of a freed allocation")
	require.NoError(t, d.Free(handles[0]))
	require.NoError(t, d.Free(handles[2]))
}

// testHashSpansRacingFrees hashes the same two allocations in opposite span
// orders from two goroutines while a third frees them: every call ends,
// with the right digests or a freed handle, never a deadlock.
func testHashSpansRacingFrees(t *testing.T, d cuda.Device) {
	hs := spanHasher(t, d)
	const size, chunk = 128 << 10, 64 << 10
	data := Pattern(40, size)
	want := ChunkSums(data, chunk)
	for round := range 20 {
		a, b := allocate(t, d, size), allocate(t, d, size)
		require.NoError(t, d.Write(a, 0, data))
		require.NoError(t, d.Write(b, 0, data))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, order := range [][]cuda.Handle{{a, b}, {b, a}} {
			wg.Go(func() {
				<-start
				for range 3 {
					got, err := hs.HashSpans([]cuda.Span{
						{Handle: order[0], Length: size, ChunkSize: chunk},
						{Handle: order[1], Length: size, ChunkSize: chunk},
					})
					if err != nil {
						assert.ErrorIs(t, err, messages.ErrInvalidInput, "round %d: a hash that loses the race sees a freed handle", round)
						continue
					}
					assert.Equal(t, [][][sha256.Size]byte{want, want}, got, "round %d", round)
				}
			})
		}
		wg.Go(func() {
			<-start
			assert.NoError(t, d.Free(a))
			assert.NoError(t, d.Free(b))
		})
		close(start)
		wg.Wait()
	}
}
