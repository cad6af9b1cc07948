package cuda

import (
	"crypto/sha256"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Which way a Sim hashes its memory.
//
// Hashing a chunk straight from a large allocation is not always the
// fastest way on a host: on some machines (a 2-core AMD EPYC VM measured
// 1.13 GB/s per core in place against 1.50 for copying each 4 MiB chunk to
// a cache-hot buffer and hashing that) the copy through a buffer that
// stays in cache wins, on others it loses. So a Sim measures: its first
// calibrationSamples large chunks of each way are hashed in turn, timed,
// and from then on it hashes every chunk the way whose fastest sample took
// the least time per byte. The fastest, not the mean, because other load
// on the host only ever adds time. Every way gives the same digest; only
// the speed differs.

// hashWay is one way of hashing a chunk. buf is the caller's buffer of
// hashBufferSize bytes, for the ways that copy.
type hashWay func(data, buf []byte) [sha256.Size]byte

// hashWays are the ways a Sim chooses from: in place, and through a buffer
// of hashBufferSize bytes, small enough to stay in a core's L2 cache.
var hashWays = [2]hashWay{hashDirect, hashBuffered}

// hashBufferSize is the buffer hashBuffered copies through.
const hashBufferSize = 256 << 10

// Calibration: a chunk of at least calibrationMinChunk bytes is timed
// (smaller ones may still be in cache from the write), and each way is
// timed calibrationSamples times before the Sim chooses.
const (
	calibrationMinChunk = 1 << 20
	calibrationSamples  = 4
)

func hashDirect(data, _ []byte) [sha256.Size]byte { return sha256.Sum256(data) }

func hashBuffered(data, buf []byte) [sha256.Size]byte {
	h := sha256.New()
	for len(data) > 0 {
		n := copy(buf, data)
		h.Write(buf[:n])
		data = data[n:]
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// hashChooser picks a Sim's way of hashing, measuring until it has chosen.
// It is safe for concurrent use.
type hashChooser struct {
	chosen atomic.Int32 // index into ways plus one; 0 while measuring
	turn   atomic.Int64 // which way the next measured chunk takes
	bufs   sync.Pool    // *[]byte of hashBufferSize

	ways    [2]hashWay
	mu      sync.Mutex
	samples [2]int     // chunks timed, per way
	best    [2]float64 // least ns per byte seen, per way
}

// newHashChooser chooses between ways; a Sim's are hashWays.
func newHashChooser(ways [2]hashWay) *hashChooser {
	c := &hashChooser{ways: ways}
	c.bufs.New = func() any { b := make([]byte, hashBufferSize); return &b }
	for i := range c.best {
		c.best[i] = math.Inf(1)
	}
	return c
}

// sum hashes data the chosen way, or, while measuring, the way whose turn
// it is, timing it; a chunk under calibrationMinChunk, in place.
func (c *hashChooser) sum(data []byte) [sha256.Size]byte {
	if len(data) < calibrationMinChunk {
		return sha256.Sum256(data) // small enough to sit in cache
	}
	bp := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(bp)
	if k := c.chosen.Load(); k > 0 {
		return c.ways[k-1](data, *bp)
	}
	way := int(c.turn.Add(1)-1) % len(c.ways)
	start := time.Now()
	sum := c.ways[way](data, *bp)
	c.measured(way, float64(time.Since(start).Nanoseconds())/float64(len(data)))
	return sum
}

// measured notes that way took nsPerByte once, and chooses once every way
// has its samples.
func (c *hashChooser) measured(way int, nsPerByte float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.samples[way]++
	c.best[way] = min(c.best[way], nsPerByte)
	for _, n := range c.samples {
		if n < calibrationSamples {
			return
		}
	}
	if c.chosen.Load() == 0 {
		c.chosen.Store(int32(argmin(c.best[:]) + 1))
	}
}

// argmin is the index of the least of xs, the first one on a tie.
func argmin(xs []float64) int {
	k := 0
	for i, x := range xs {
		if x < xs[k] {
			k = i
		}
	}
	return k
}
