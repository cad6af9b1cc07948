package stress

import (
	"bytes"
	"io"
	"math/rand/v2"
)

// maxHeaderLen bounds the header that opens every shard the harness seals:
// the shard's ID and a NUL byte. The smallest seal must hold it.
const maxHeaderLen = 64

// poolSize is the size of the random bytes shard data is cut from.
const poolSize = 4 << 20

// dataPool is read-only random bytes that every caller cuts shard data from,
// so that sealing costs no allocation and no random generation per seal.
type dataPool []byte

// newDataPool fills a pool from the seed.
func newDataPool(seed int64) dataPool {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	p := make([]byte, poolSize)
	for i := 0; i < len(p); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < len(p); j++ {
			p[i+j] = byte(v >> (8 * j))
		}
	}
	return p
}

// shard returns the size bytes to seal as id: the header (id and a NUL, so
// the device wrapper can tell which allocation holds which shard), then pool
// bytes from a seeded offset, wrapping round.
func (p dataPool) shard(id string, size int64, rng *rand.Rand) io.Reader {
	header := append([]byte(id), 0)
	return io.MultiReader(bytes.NewReader(header), &cycleReader{pool: p, pos: rng.IntN(len(p)), left: size - int64(len(header))})
}

// shardIDFromHeader reads the ID from the first bytes written to an
// allocation, or returns "" if they hold no header.
func shardIDFromHeader(p []byte) string {
	end := bytes.IndexByte(p[:min(len(p), maxHeaderLen)], 0)
	if end <= 0 {
		return ""
	}
	return string(p[:end])
}

// cycleReader reads left bytes of pool from pos, wrapping round.
type cycleReader struct {
	pool dataPool
	pos  int
	left int64
}

func (r *cycleReader) Read(b []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	n := copy(b[:min(int64(len(b)), r.left)], r.pool[r.pos:])
	r.pos = (r.pos + n) % len(r.pool)
	r.left -= int64(n)
	return n, nil
}
