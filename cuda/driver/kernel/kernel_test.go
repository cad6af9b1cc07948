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

func TestHashSpansEqualsCryptoSHA256(t *testing.T) {
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
				got, stray := HashSpans([]Span{{data, tc.chunk}}, blocks+extra, tc.threads)
				require.Len(t, got, 1)
				assert.Equal(t, want, got[0], "%d blocks more than needed", extra)
				assert.False(t, stray, "threads past the last chunk wrote nothing, %d blocks more than needed", extra)
			}
		})
	}
}

func TestHashSpansOnUnalignedData(t *testing.T) {
	const length, chunk = 256<<10 + 3, 64<<10 + 1
	buf := cudatest.Pattern(3, length+3)
	for align := range 4 {
		data := buf[align : align+length-3]
		got, stray := HashSpans([]Span{{data, chunk}}, 1, 8)
		assert.Equal(t, [][][sha256.Size]byte{cudatest.ChunkSums(data, chunk)}, got, "alignment %d", align)
		assert.False(t, stray)
	}
}

func TestHashSpansWithTooSmallAGrid(t *testing.T) {
	data := cudatest.Pattern(4, 10<<10)
	sums, _ := HashSpans([]Span{{data, 1 << 10}}, 1, 4)
	got, want := sums[0], cudatest.ChunkSums(data, 1<<10)
	assert.Equal(t, want[:4], got[:4], "the grid's four threads hash the first four chunks")
	for i := 4; i < len(got); i++ {
		assert.NotEqual(t, want[i], got[i], "chunk %d has no thread", i)
	}
}

func TestHashSpansOfManyAllocationsInOneLaunch(t *testing.T) {
	// Spans of different sizes and chunk sizes, empty ones among them, so
	// that threads must find their span by the chunk numbering alone.
	shapes := []struct{ length, chunk int64 }{
		{3<<16 + 5, 64 << 10}, {0, 64 << 10}, {1, 64 << 10}, {10000, 1000}, {0, 7},
		{1 << 20, 1 << 20}, {200, 3}, {5<<16 - 1, 64 << 10}, {0, 64 << 10},
	}
	spans := make([]Span, len(shapes))
	want := make([][][sha256.Size]byte, len(shapes))
	var chunks int64
	for i, sh := range shapes {
		spans[i] = Span{cudatest.Pattern(uint64(50+i), sh.length), sh.chunk}
		want[i] = cudatest.ChunkSums(spans[i].Data, sh.chunk)
		chunks += int64(len(want[i]))
	}
	for _, threads := range []uint32{1, 32, 128} {
		blocks := uint32((chunks + int64(threads) - 1) / int64(threads))
		got, stray := HashSpans(spans, blocks+1, threads)
		assert.Equal(t, want, got, "blocks of %d threads", threads)
		assert.False(t, stray, "blocks of %d threads", threads)
	}
	got, stray := HashSpans(nil, 1, 32)
	assert.Empty(t, got, "no spans")
	assert.False(t, stray, "no spans, no digests")
}
