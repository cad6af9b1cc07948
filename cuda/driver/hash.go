package driver

import (
	"crypto/sha256"
	"fmt"

	"github.com/vramseal/vramseal/cuda"
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
// kernel loaded (HashesOnDevice), a launch runs a GPU thread for each chunk,
// up to 65,536 chunks of all the spans at once, hashing it where it lies, and
// only the digests, 32 bytes a chunk, are copied back; otherwise, or while
// device memory is too full for a digest buffer (see Allocate), the chunks
// are copied out and hashed on the calling core.
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
		if chunks == 0 {
			return nil
		}
		if d.HashesOnDevice() {
			l, err := d.takeLane()
			if err != nil {
				return err
			}
			defer func() { d.lanes <- l }()
			if l.buf != 0 {
				return d.hashOnDevice(l, spans, ptrs, sums)
			}
			d.stats.hostFallbacks.Add(1)
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

// BatchChunks is how many chunks a HashSpans call should carry: those of a
// whole launch while the kernel hashes (a GPU wants thousands of chunks at
// once, where host cores want a few each), zero otherwise.
func (d *Device) BatchChunks() int64 {
	if d.HashesOnDevice() {
		return launchChunks
	}
	return 0
}

// hashOnDevice hashes the spans' chunks with the kernel on l, one thread per
// chunk, in as few launches of up to launchChunks chunks and launchSpans
// spans as they fill, and copies the digests back into sums.
func (d *Device) hashOnDevice(l *lane, spans []cuda.Span, ptrs []devicePtr, sums [][][sha256.Size]byte) error {
	var launch []deviceSpan
	var dst [][][sha256.Size]byte // where each launched span's digests go
	var chunks int64
	out := l.out
	flush := func() error {
		if chunks == 0 {
			return nil
		}
		blocks := (chunks + hashThreads - 1) / hashThreads
		if err := d.dev.runHashKernel(d.kernel, l.stream, l.buf, launch, chunks, uint32(blocks), hashThreads, out); err != nil {
			return err
		}
		d.stats.launches.Add(1)
		d.stats.chunks.Add(chunks)
		rest := out
		for _, sums := range dst {
			for c := range sums {
				rest = rest[copy(sums[c][:], rest):]
			}
		}
		launch, dst, chunks = launch[:0], dst[:0], 0
		return nil
	}
	for i, s := range spans {
		for c := int64(0); c < int64(len(sums[i])); {
			n := min(int64(len(sums[i]))-c, launchChunks-chunks)
			off := c * s.ChunkSize
			launch = append(launch, deviceSpan{ptr: ptrs[i], offset: s.Offset + off, length: min(n*s.ChunkSize, s.Length-off), chunkSize: s.ChunkSize})
			dst = append(dst, sums[i][c:c+n])
			chunks += n
			c += n
			if chunks == launchChunks || len(launch) == launchSpans {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
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
