package cuda

import (
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"sync"
	"sync/atomic"
)

// touchBlock is how much of a chunk is touched, then hashed, at a time: a
// quarter of a core's L2 cache on today's servers. Hashing straight from
// memory the cache has not seen runs slower than copying it out first;
// reading a block's cache lines, then hashing the block from cache, runs
// faster than either.
const touchBlock = 256 << 10

// cacheLine is the stride at which touch reads.
const cacheLine = 64

var _ ChunkHasher = (*Sim)(nil)

// HashChunks hashes the chunks where they lie in the Sim's memory, on up to
// GOMAXPROCS host cores, and copies nothing out: BytesRead does not change,
// BytesHashed grows by length. A call takes one armed FailReads failure, as
// a Read would, so faults injected for readers reach hashers too.
func (s *Sim) HashChunks(h Handle, offset, length, chunkSize int64) ([][sha256.Size]byte, error) {
	chunks, err := chunkCount("sim", length, chunkSize)
	if err != nil {
		return nil, err
	}
	a, err := s.lookup("hash", h, offset, length)
	if err != nil {
		return nil, err
	}
	sums := make([][sha256.Size]byte, chunks)
	err = a.shared("sim", "hash", h, func(m simMemory) error {
		if err := s.takeReadFailure(); err != nil {
			return err
		}
		hashInPlace(m.data[offset:offset+length], chunkSize, sums)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.bytesHashed.Add(length)
	return sums, nil
}

// hashInPlace sets sums[i] to the SHA-256 of chunk i of data, hashing up to
// GOMAXPROCS chunks at once. It returns when every chunk is hashed.
func hashInPlace(data []byte, chunkSize int64, sums [][sha256.Size]byte) {
	chunk := func(i int64) []byte {
		off := i * chunkSize
		return data[off : off+min(chunkSize, int64(len(data))-off)]
	}
	workers := min(int64(runtime.GOMAXPROCS(0)), int64(len(sums)))
	if workers <= 1 {
		for i := range sums {
			sums[i] = hashTouched(chunk(int64(i)))
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(sums)); i = next.Add(1) - 1 {
				sums[i] = hashTouched(chunk(i))
			}
		})
	}
	wg.Wait()
}

// hashTouched is sha256.Sum256(p), computed one touchBlock at a time, each
// block's cache lines read just before it is hashed.
func hashTouched(p []byte) [sha256.Size]byte {
	h := sha256.New()
	var seen uint64
	for off := 0; off < len(p); off += touchBlock {
		block := p[off:min(off+touchBlock, len(p))]
		seen ^= touch(block)
		h.Write(block)
	}
	runtime.KeepAlive(seen)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// touch reads one word of each cache line of p, bringing p into the cache,
// and returns them folded, so the reads cannot be optimised away.
func touch(p []byte) uint64 {
	var x uint64
	for i := 0; i+8 <= len(p); i += cacheLine {
		x ^= binary.LittleEndian.Uint64(p[i:])
	}
	return x
}
