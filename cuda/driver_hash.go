package cuda

import (
	"crypto/sha256"
	"fmt"

	"github.com/vramseal/vramseal/messages"
)

// copyOutPiece is how much of a chunk the host fallback copies out at a
// time, so that hashing a 64 MiB chunk needs no 64 MiB buffer.
const copyOutPiece = 1 << 20

var _ ChunkHasher = (*Driver)(nil)

// HashChunks returns the SHA-256 of each chunk of the span. With the kernel
// loaded (HashesOnDevice), one GPU thread hashes each chunk where it lies
// and only the digests, 32 bytes a chunk, are copied back; otherwise the
// chunks are copied out and hashed on the calling core.
func (d *Driver) HashChunks(h Handle, offset, length, chunkSize int64) ([][sha256.Size]byte, error) {
	chunks, err := chunkCount(d.table.name, length, chunkSize)
	if err != nil {
		return nil, err
	}
	a, err := d.lookup("hash", h, offset, length)
	if err != nil {
		return nil, err
	}
	sums := make([][sha256.Size]byte, chunks)
	err = a.shared(d.table.name, "hash", h, func(ptr devicePtr) error {
		if d.HashesOnDevice() {
			return d.hashOnDevice(ptr, offset, length, chunkSize, sums)
		}
		return d.hashCopyingOut(ptr, offset, length, chunkSize, sums)
	})
	if err != nil {
		return nil, err
	}
	return sums, nil
}

// hashOnDevice runs the kernel over the span, one thread per chunk, and
// copies the digests back into sums.
func (d *Driver) hashOnDevice(ptr devicePtr, offset, length, chunkSize int64, sums [][sha256.Size]byte) error {
	chunks := int64(len(sums))
	if chunks == 0 {
		return nil
	}
	blocks := (chunks + hashThreads - 1) / hashThreads
	if blocks > maxGridBlocks {
		return fmt.Errorf("%s: hash %d chunks: more than one kernel launch can hold: %w", d.table.name, chunks, messages.ErrInvalidInput)
	}
	out := make([]byte, chunks*sha256.Size)
	if err := d.dev.runHashKernel(d.kernel, ptr, offset, length, chunkSize, uint32(blocks), hashThreads, out); err != nil {
		return err
	}
	for i := range sums {
		copy(sums[i][:], out[int64(i)*sha256.Size:])
	}
	return nil
}

// hashCopyingOut hashes the span's chunks on the host, copying each out in
// pieces of copyOutPiece bytes.
func (d *Driver) hashCopyingOut(ptr devicePtr, offset, length, chunkSize int64, sums [][sha256.Size]byte) error {
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
