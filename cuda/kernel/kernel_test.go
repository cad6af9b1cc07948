package kernel

import (
	"crypto/sha256"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda/cudatest"
)

func TestSumEqualsCryptoSHA256AcrossPaddingEdges(t *testing.T) {
	// Every length from empty to past three blocks covers the 55/56-byte
	// edge where the length no longer fits the last block, the 64-byte
	// block edge, and one to three full blocks; each at every alignment
	// covers both the word and the byte load paths.
	buf := cudatest.Pattern(1, 3*64+20+3)
	for n := 0; n <= 3*64+20; n++ {
		for align := range 4 {
			p := buf[align : align+n]
			require.Equal(t, sha256.Sum256(p), Sum(p), "%d bytes at alignment %d", n, align)
		}
	}
}

func TestSumEqualsCryptoSHA256OnRandomLengths(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 0))
	for i := range 300 {
		n := r.Int64N(64 << 10)
		p := cudatest.Pattern(uint64(100+i), n)
		require.Equal(t, sha256.Sum256(p), Sum(p), "case %d: %d bytes", i, n)
	}
}

func TestHashChunksEqualsCryptoSHA256(t *testing.T) {
	for _, tc := range []struct {
		name    string
		length  int64
		chunk   int64
		threads uint32
	}{
		{"empty", 0, 64 << 10, 128},
		{"one short chunk", 1000, 64 << 10, 128},
		{"64 KiB chunks, short last chunk", 1<<20 + 77, 64 << 10, 128},
		{"64 KiB chunks, exact", 1 << 20, 64 << 10, 128},
		{"64 KiB chunks, blocks of one thread", 1<<20 + 1, 64 << 10, 1},
		{"64 KiB chunks, blocks of 7 threads", 3<<20 + 5, 64 << 10, 7},
		{"1 MiB chunks", 5<<20 + 55, 1 << 20, 128},
		{"4 MiB chunks", 9<<20 + 56, 4 << 20, 128},
		{"64 MiB chunks, short last chunk", 64<<20 + 64, 64 << 20, 128},
		{"one byte per chunk", 200, 1, 32},
		{"chunk of a padding edge", 56 * 9, 56, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := cudatest.Pattern(uint64(tc.length), tc.length)
			want := cudatest.ChunkSums(data, tc.chunk)
			blocks := uint32((int64(len(want)) + int64(tc.threads) - 1) / int64(tc.threads))
			for _, extra := range []uint32{0, 2} {
				got, stray := HashChunks(data, tc.chunk, blocks+extra, tc.threads)
				assert.Equal(t, want, got, "%d blocks more than needed", extra)
				assert.False(t, stray, "threads past the last chunk wrote nothing, %d blocks more than needed", extra)
			}
		})
	}
}

func TestHashChunksOnUnalignedData(t *testing.T) {
	const length, chunk = 256<<10 + 3, 64<<10 + 1
	buf := cudatest.Pattern(3, length+3)
	for align := range 4 {
		data := buf[align : align+length-3]
		got, stray := HashChunks(data, chunk, 1, 8)
		assert.Equal(t, cudatest.ChunkSums(data, chunk), got, "alignment %d", align)
		assert.False(t, stray)
	}
}

func TestHashChunksWithTooSmallAGrid(t *testing.T) {
	data := cudatest.Pattern(4, 10<<10)
	got, _ := HashChunks(data, 1<<10, 1, 4)
	want := cudatest.ChunkSums(data, 1<<10)
	assert.Equal(t, want[:4], got[:4], "the grid's four threads hash the first four chunks")
	for i := 4; i < len(got); i++ {
		assert.NotEqual(t, want[i], got[i], "chunk %d has no thread", i)
	}
}
