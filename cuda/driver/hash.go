package driver

import (
	"crypto/sha256"
	"fmt"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
)

// copyOutPiece is how much of a chunk the host fallback copies out at a
// time, so that hashing a 64 MiB chunk needs no 64 MiB buffer.
const copyOutPiece = 1 << 20

var _ cuda.SpanHasher = (*Device)(nil)

// HashChunks returns the SHA-256 of each chunk of the span; see HashSpans.
func (d *Device) HashChunks(h cuda.Handle, offset, length, chunkSize int64) ([][sha256.Size]byte, error) {
	sums, err := d.HashSpans([]cuda.Span{{Handle: h, Offset: offset, Length: length, ChunkSize: chunkSize}})
	if err != nil {
		return nil, err
	}
	return sums[0], nil
}

// HashSpans returns the SHA-256 of each chunk of every span. With the
// kernel loaded (HashesOnDevice), one launch runs a GPU thread for each
// chunk of all the spans, hashing it where it lies, and only the digests,
// 32 bytes a chunk, are copied back; otherwise the chunks are copied out
// and hashed on the calling core.
func (d *Device) HashSpans(spans []cuda.Span) ([][][sha256.Size]byte, error) {
	d.mu.Lock()
	allocs, err := d.table.Spans("hash", spans)
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	sums, chunks, err := cuda.NewSpanSums(d.table.Name(), spans)
	if err != nil {
		return nil, err
	}
	err = cuda.SharedAll(d.table.Name(), "hash", spans, allocs, func(ptrs []devicePtr) error {
		if d.HashesOnDevice() {
			return d.hashOnDevice(spans, ptrs, chunks, sums)
		}
		for i, s := range spans {
			if err := d.hashCopyingOut(ptrs[i], s.Offset, s.Length, s.ChunkSize, sums[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sums, nil
}

// hashOnDevice runs the kernel once over every non-empty span, one thread
// per chunk, and copies the digests back into sums.
func (d *Device) hashOnDevice(spans []cuda.Span, ptrs []devicePtr, chunks int64, sums [][][sha256.Size]byte) error {
	if chunks == 0 {
		return nil
	}
	blocks := (chunks + hashThreads - 1) / hashThreads
	if blocks > maxGridBlocks {
		return fmt.Errorf("%s: hash %d chunks: more than one kernel launch can hold: %w", d.table.Name(), chunks, messages.ErrInvalidInput)
	}
	var launch []deviceSpan
	for i, s := range spans {
		if s.Length > 0 {
			launch = append(launch, deviceSpan{ptr: ptrs[i], offset: s.Offset, length: s.Length, chunkSize: s.ChunkSize})
		}
	}
	out := make([]byte, chunks*sha256.Size)
	if err := d.dev.runHashKernel(d.kernel, launch, chunks, uint32(blocks), hashThreads, out); err != nil {
		return err
	}
	for i := range sums {
		for c := range sums[i] {
			out = out[copy(sums[i][c][:], out):]
		}
	}
	return nil
}

// hashCopyingOut hashes the span's chunks on the host, copying each out in
// pieces of copyOutPiece bytes.
func (d *Device) hashCopyingOut(ptr devicePtr, offset, length, chunkSize int64, sums [][sha256.Size]byte) error {
	if length == 0 {
		return nil
	}
	buf := make([]byte, min(copyOutPiece, length))
	for i := range sums {
		start := offset + int64(i)*chunkSize
		n := min(chunkSize, offset+length-start)
		hash := sha256.New()
		for done := int64(0); done < n; {
			piece := buf[:min(int64(len(buf)), n-done)]
			if res := d.dev.copyFromDevice(piece, ptr, start+done); res != cudaSuccess {
				return cudaError(d.dev.index, fmt.Sprintf("cuMemcpyDtoH %d bytes at offset %d", len(piece), start+done), res)
			}
			hash.Write(piece)
			done += int64(len(piece))
		}
		hash.Sum(sums[i][:0])
	}
	return nil
}
