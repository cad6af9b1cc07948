package driver

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
)

// hashBytesEnv sets the allocation BenchmarkDriverHash hashes, in bytes.
const hashBytesEnv = "GPUCHECK_HASH_BYTES"

// fillDevice writes size pseudo-random bytes from seed into h, 64 MiB at a
// time.
func fillDevice(tb testing.TB, d *Device, h cuda.Handle, size int64, seed uint64) {
	tb.Helper()
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	r := rand.NewChaCha8(key)
	buf := make([]byte, min(size, 64<<20))
	for off := int64(0); off < size; off += int64(len(buf)) {
		piece := buf[:min(int64(len(buf)), size-off)]
		_, _ = r.Read(piece) // ChaCha8.Read never fails.
		require.NoError(tb, d.Write(h, off, piece))
	}
}

// TestDriverOnDeviceHashesLikeTheHost hashes shards of several sizes with
// the kernel and, after copying them out, with crypto/sha256 on the host;
// every digest must be equal. gpucheck.sh runs it on a GPU.
func TestDriverOnDeviceHashesLikeTheHost(t *testing.T) {
	d := openTestDriver(t)
	require.True(t, d.HashesOnDevice(), "the SHA-256 kernel loaded")
	sizes := []int64{1<<20 + 13, 64<<20 + 5, 1<<30 + 7}
	if os.Getenv(fakeCUDAEnv) != "" {
		sizes = []int64{1<<20 + 13, 16<<20 + 5}
	}
	free, _, err := d.MemInfo()
	require.NoError(t, err)
	for i, size := range sizes {
		if size > free/2 {
			t.Logf("%d bytes: not tested, %d bytes free", size, free)
			continue
		}
		t.Run(fmt.Sprintf("%d bytes", size), func(t *testing.T) {
			h, err := d.Allocate(size)
			require.NoError(t, err)
			defer func() { assert.NoError(t, d.Free(h)) }()
			fillDevice(t, d, h, size, uint64(i))
			for _, chunk := range []int64{64 << 10, 4 << 20} {
				got, err := d.HashChunks(h, 0, size, chunk)
				require.NoError(t, err)
				want := make([][sha256.Size]byte, len(got))
				buf := make([]byte, chunk)
				for c := range want {
					off := int64(c) * chunk
					piece := buf[:min(chunk, size-off)]
					require.NoError(t, d.Read(h, off, piece))
					want[c] = sha256.Sum256(piece)
				}
				require.Equal(t, want, got, "chunks of %d bytes", chunk)
			}
		})
	}
}

// BenchmarkDriverHash measures, on CUDA device 0, hashing with the kernel
// by chunk size (64 KiB, 1 MiB, 4 MiB): shard/<chunk> hashes one shard's
// allocation in one HashChunks call, as Verify does; device/<chunk> hashes
// the chunks of all of several such shards in one HashSpans call, as a scrub
// pass does. DtoH+SHA256 copies 4 MiB chunks out and hashes them on every
// core (the path without the kernel), DtoH copies alone. The MB/s columns
// compare directly. The shards are 256 MiB each, 4 GiB in all, or
// GPUCHECK_HASH_BYTES, at most half the free memory (16 MiB in 4 MiB shards
// over the fake libcuda). It skips without a driver.
func BenchmarkDriverHash(b *testing.B) {
	d := openTestDriver(b)
	if !d.HashesOnDevice() {
		b.Fatal("the SHA-256 kernel did not load")
	}
	want := int64(4 << 30)
	if s := os.Getenv(hashBytesEnv); s != "" {
		var err error
		want, err = strconv.ParseInt(s, 10, 64)
		require.NoError(b, err, hashBytesEnv)
	}
	h, size := benchAllocation(b, d, want)
	fillDevice(b, d, h, size, 1)
	shard := min(int64(256<<20), size)
	if os.Getenv(fakeCUDAEnv) != "" {
		shard = 4 << 20
	}

	for _, chunk := range []int64{64 << 10, 1 << 20, 4 << 20} {
		b.Run(fmt.Sprintf("shard/%dKiB", chunk>>10), func(b *testing.B) {
			b.SetBytes(shard)
			for b.Loop() {
				if _, err := d.HashChunks(h, 0, shard, chunk); err != nil {
					b.Fatal(err)
				}
			}
		})
		var spans []cuda.Span
		for off := int64(0); off < size; off += shard {
			spans = append(spans, cuda.Span{Handle: h, Offset: off, Length: min(shard, size-off), ChunkSize: chunk})
		}
		b.Run(fmt.Sprintf("device/%dKiB", chunk>>10), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				if _, err := d.HashSpans(spans); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	copyOut := func(b *testing.B, hash bool) {
		const chunk = 4 << 20
		b.SetBytes(size)
		for b.Loop() {
			var next atomic.Int64
			var wg sync.WaitGroup
			for range runtime.GOMAXPROCS(0) {
				wg.Go(func() {
					buf := make([]byte, chunk)
					for off := next.Add(chunk) - chunk; off < size; off = next.Add(chunk) - chunk {
						piece := buf[:min(chunk, size-off)]
						if err := d.Read(h, off, piece); err != nil {
							b.Error(err)
							return
						}
						if hash {
							sha256.Sum256(piece)
						}
					}
				})
			}
			wg.Wait()
		}
	}
	b.Run("DtoH+SHA256", func(b *testing.B) { copyOut(b, true) })
	b.Run("DtoH", func(b *testing.B) { copyOut(b, false) })
}
