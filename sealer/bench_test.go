package sealer

import (
	"crypto/sha256"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// benchSize is the stream the digest benchmarks hash.
const benchSize = 64 << 20

// BenchmarkDigest64MiB hashes 64 MiB with crypto/sha256 alone, then with a
// Digester (which hashes every byte twice: whole stream and per chunk) fed in
// writes of several sizes. Each digester iteration also times one plain
// sha256 pass, untimed by the benchmark, and reports "x-sha256": digester
// throughput as a fraction of sha256's, measured interleaved so that load
// from other processes hits both alike. The target is >= 0.95.
func BenchmarkDigest64MiB(b *testing.B) {
	data := randomBytes(rand.New(rand.NewPCG(1, 1)), benchSize)
	b.Run("sha256", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			sha256.Sum256(data)
		}
	})
	for _, write := range []int{benchSize, DefaultChunkSize, concurrentWriteMin, 64 << 10} {
		b.Run("digester-write"+sizeName(write), func(b *testing.B) {
			b.SetBytes(benchSize)
			d, err := NewDigester(DefaultChunkSize)
			if err != nil {
				b.Fatal(err)
			}
			var plain time.Duration
			for b.Loop() {
				d.Reset()
				for off := 0; off < len(data); off += write {
					d.Write(data[off:min(off+write, len(data))])
				}
				d.Digests()

				b.StopTimer()
				start := time.Now()
				sha256.Sum256(data)
				plain += time.Since(start)
				b.StartTimer()
			}
			b.ReportMetric(float64(plain)/float64(b.Elapsed()), "x-sha256")
		})
	}
}

// sizeName names a power-of-two size of at least 1 KiB, as in "4MiB".
func sizeName(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + "MiB"
	}
	return strconv.Itoa(n>>10) + "KiB"
}
