package cuda_test

import (
	"crypto/sha256"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/cuda/cudatest"
	"github.com/vramseal/vramseal/messages"
)

func TestSimHashChunksReadsNothingOut(t *testing.T) {
	for _, mode := range memoryModes {
		t.Run(mode.name, func(t *testing.T) {
			const size, chunk = 3<<20 + 5, 1 << 20
			s := newSimWith(t, cuda.SimConfig{Capacity: 8 << 20, Prefault: mode.prefault, Shareable: mode.shareable})
			data := cudatest.Pattern(7, int64(size))
			h := allocateFilled(t, s, data)

			got, err := s.HashChunks(h, 0, size, chunk)
			require.NoError(t, err)
			assert.Equal(t, cudatest.ChunkSums(data, chunk), got, "four chunks, the last of 5 bytes")
			assert.Zero(t, s.BytesRead(), "hashing in place copies nothing out")
			assert.Equal(t, int64(size), s.BytesHashed())

			spans, err := s.HashSpans([]cuda.Span{
				{Handle: h, Offset: 0, Length: chunk, ChunkSize: chunk},
				{Handle: h, Offset: 1, Length: size - 1, ChunkSize: chunk},
			})
			require.NoError(t, err)
			assert.Equal(t, [][][sha256.Size]byte{got[:1], cudatest.ChunkSums(data[1:], chunk)}, spans)
			assert.Zero(t, s.BytesRead(), "hashing spans copies nothing out")
			assert.Equal(t, int64(2*size+chunk-1), s.BytesHashed())

			contents(t, s, h, size)
			assert.Equal(t, int64(size), s.BytesRead(), "a Read is counted")
			assert.Equal(t, int64(2*size+chunk-1), s.BytesHashed(), "a Read hashes nothing")
		})
	}
}

func TestSimHashChunksFindsAFlip(t *testing.T) {
	const size, chunk = 1 << 20, 64 << 10
	s := newSim(t, size, 1)
	data := cudatest.Pattern(8, int64(size))
	h := allocateFilled(t, s, data)
	const at = 9*chunk + 1000
	require.NoError(t, s.FlipBit(h, at, 3))
	data[at] ^= 1 << 3

	got, err := s.HashChunks(h, 0, size, chunk)
	require.NoError(t, err)
	assert.Equal(t, cudatest.ChunkSums(data, chunk), got, "the digests are of the flipped bytes")
	again, err := s.HashChunks(h, 8*chunk, 2*chunk, chunk)
	require.NoError(t, err)
	assert.Equal(t, got[8:10], again, "a span hashes as the same chunks of the whole")
}

func TestSimHashChunksTakesReadFailures(t *testing.T) {
	s := newSim(t, 1<<20, 1)
	h := allocateFilled(t, s, cudatest.Pattern(9, 4096))
	s.FailReads(2)
	_, err := s.HashChunks(h, 0, 4096, 4096)
	assert.ErrorIs(t, err, cuda.ErrCopyFailed, "the first armed failure reaches a hash")
	assert.ErrorIs(t, s.Read(h, 0, make([]byte, 1)), cuda.ErrCopyFailed, "and the second a read")
	_, err = s.HashChunks(h, 0, 4096, 4096)
	assert.NoError(t, err, "hashing recovers")
	assert.Equal(t, int64(4096), s.BytesHashed(), "failed hashes count nothing")
}

func TestSimHashChunksOnALostDevice(t *testing.T) {
	s := newSim(t, 1<<20, 1)
	h := allocateFilled(t, s, cudatest.Pattern(10, 4096))
	s.Lose()
	_, err := s.HashChunks(h, 0, 4096, 4096)
	assert.ErrorIs(t, err, messages.ErrDeviceFault)
}

// BenchmarkSimHashChunks compares hashing a 64 MiB allocation in place with
// reading it out in 4 MiB chunks and hashing each, on all cores each way.
// The MB/s columns compare directly.
func BenchmarkSimHashChunks(b *testing.B) {
	const size, chunk = 64 << 20, 4 << 20
	s := newSimWith(b, cuda.SimConfig{Capacity: size, Prefault: true})
	h, err := s.Allocate(size)
	require.NoError(b, err)
	require.NoError(b, s.Write(h, 0, cudatest.Pattern(12, int64(size))))
	b.Run("in place", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := s.HashChunks(h, 0, size, chunk); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("copy out", func(b *testing.B) {
		workers := runtime.GOMAXPROCS(0)
		bufs := make([][]byte, workers)
		for w := range bufs {
			bufs[w] = make([]byte, chunk)
		}
		b.SetBytes(size)
		for b.Loop() {
			var next atomic.Int64
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for off := next.Add(chunk) - chunk; off < size; off = next.Add(chunk) - chunk {
						if err := s.Read(h, off, bufs[w]); err != nil {
							b.Error(err)
							return
						}
						sha256.Sum256(bufs[w])
					}
				})
			}
			wg.Wait()
		}
	})
}
