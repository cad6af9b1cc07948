package cudatest

import (
	"crypto/sha256"
	"math"
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
