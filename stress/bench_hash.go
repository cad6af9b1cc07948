package stress

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/vramseal/vramseal/supervisor"
)

// shaBuffer and shaWindow size the single-core SHA-256 measurement.
const (
	shaBuffer = 4 << 20
	shaWindow = 400 * time.Millisecond
	shaRounds = 3
)

// measureSHA256 is one core's SHA-256 rate over a 4 MiB buffer in MB/s, the
// best of a few windows.
func measureSHA256(ctx context.Context) (float64, error) {
	buf := newDataPool(2)[:shaBuffer]
	return bestRate(ctx, func() { sha256.Sum256(buf) })
}

// copySource is the memory measureCopySHA256 copies from: larger than any
// cache, as device memory is.
const copySource = 64 << 20

// measureCopySHA256 is one core's rate, in MB/s, of what a simulated device
// read costs before the hash: copying 4 MiB from memory to a staging buffer,
// then hashing it. Cores times this is the ceiling for scrub and Verify on a
// Sim, whose "device" reads are host copies.
func measureCopySHA256(ctx context.Context) (float64, error) {
	src, pool := make([]byte, copySource), newDataPool(3)
	for off := 0; off < len(src); {
		off += copy(src[off:], pool)
	}
	buf := make([]byte, shaBuffer)
	var at int
	return bestRate(ctx, func() {
		copy(buf, src[at:])
		sha256.Sum256(buf)
		at = (at + shaBuffer) % copySource
	})
}

// bestRate runs step, which processes shaBuffer bytes, for shaRounds
// windows of shaWindow each on this goroutine, and returns the best
// window's rate in MB/s.
func bestRate(ctx context.Context, step func()) (float64, error) {
	best := 0.0
	for range shaRounds {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		var n int64
		start := time.Now()
		for time.Since(start) < shaWindow {
			step()
			n += shaBuffer
		}
		best = max(best, mbps(n, time.Since(start)))
	}
	return best, nil
}

// copyCeiling measures the reference of the scrub and Verify rows, in
// MB/s: cores x one core's copy+SHA-256, the most a device whose data must
// be copied out before it is hashed allows.
func (b *bencher) copyCeiling(ctx context.Context) (float64, error) {
	rate, err := measureCopySHA256(ctx)
	return float64(b.cores) * rate, err
}

// hashRow is the result of the scrub or Verify row: the best of its runs
// against the best of the reference's, measured in turn with them.
func (b *bencher) hashRow(ctx context.Context, row BenchTarget, hashRate float64, run func(context.Context) (float64, error), note string) (BenchResult, error) {
	measured, ceiling, err := b.bestOf(ctx, run, b.copyCeiling)
	if err != nil {
		return BenchResult{}, err
	}
	return atLeast(row, "MB/s", measured, ceiling,
		fmt.Sprintf("%s; best of %d runs, each after a measurement of the reference, best of those: cores x one core's copy (4 MiB from memory) + SHA-256, %.0f MB/s per core; the old reference, cores x cache-hot SHA-256, is %.0f MB/s (measured %.3f x it, the ceiling %.3f x it)",
			note, b.cfg.Rounds, ceiling/float64(b.cores), hashRate, measured/hashRate, ceiling/hashRate)), nil
}

// scrubThroughput seals ScrubBytes onto one device and measures the bytes
// the background scrub verifies per second over the whole passes that end
// within ScrubWindow after the seals.
func (b *bencher) scrubThroughput(ctx context.Context, hashRate float64) (BenchResult, error) {
	cfg := b.cfg
	var best float64
	var passes int
	var span time.Duration
	res, err := b.hashRow(ctx, scrubRow, hashRate, func(ctx context.Context) (float64, error) {
		rate, n, d, err := b.scrubRun(ctx, -1)
		if err == nil && rate > best {
			best, passes, span = rate, n, d
		}
		return rate, err
	}, fmt.Sprintf("%d shards, %s in all, on one device, 4 MiB chunks, scrub interval 1 ms, unlimited rate; each run counts the whole passes that end within %v of its seals, from the end of the first to the last, the pauses between them included",
		cfg.ScrubShards, humanBytes(cfg.ScrubBytes), cfg.ScrubWindow))
	if err != nil {
		return BenchResult{}, fmt.Errorf("bench scrub: %w", err)
	}
	res.Note += fmt.Sprintf("; the best run: %d passes in %v", passes, span.Round(time.Millisecond))
	return res, nil
}

// scrubRun is one run of the scrub row: its rate in MB/s, how many passes
// it counted and the time they took. With clients >= 0 the memory is
// shareable and that many clients of a lease server hold a lease each on
// the shards while the scrub is timed.
func (b *bencher) scrubRun(ctx context.Context, clients int) (float64, int, time.Duration, error) {
	cfg := b.cfg
	clock := &passClock{}
	rt, _, err := b.startSims(ctx, supervisor.RigConfig{Capacities: []int64{cfg.ScrubBytes + 64*mib}, Shareable: clients >= 0}, discardSink{}, func(c *supervisor.Config) {
		c.VerifyInterval = time.Millisecond
		c.OnScrubPass = clock.record
	})
	if err != nil {
		return 0, 0, 0, err
	}
	var bytes int64
	var passes int
	var span time.Duration
	err = func() error {
		size := cfg.ScrubBytes / int64(cfg.ScrubShards)
		ids := make([]string, cfg.ScrubShards)
		for i := range ids {
			ids[i] = fmt.Sprintf("scrub-%d", i)
			if _, err := b.sealPattern(ctx, rt.Seal, 0, ids[i], size); err != nil {
				return err
			}
		}
		if clients > 0 {
			path, closeServer, err := serveShare(rt, cfg.TempDir)
			if err != nil {
				return err
			}
			defer closeServer()
			held, _, err := dialLeased(ctx, path, clients, ids)
			defer closeClients(held)
			if err != nil {
				return err
			}
		}
		sealed := time.Now()
		if err := wait(ctx, cfg.ScrubWindow); err != nil {
			return err
		}
		bytes, passes, span = clock.since(sealed)
		return nil
	}()
	return mbps(bytes, span), passes, span, stopRuntime(rt, err)
}

// verifyThroughput seals one VerifyBytes shard and times VerifyRounds
// Verify calls of it.
func (b *bencher) verifyThroughput(ctx context.Context, hashRate float64) (BenchResult, error) {
	cfg := b.cfg
	res, err := b.hashRow(ctx, verifyRow, hashRate, b.verifyRun,
		fmt.Sprintf("one %s shard, 4 MiB chunks, %d verifies a run", humanBytes(cfg.VerifyBytes), cfg.VerifyRounds))
	if err != nil {
		return BenchResult{}, fmt.Errorf("bench verify: %w", err)
	}
	return res, nil
}

// verifyRun is one run of the Verify row, its rate in MB/s.
func (b *bencher) verifyRun(ctx context.Context) (float64, error) {
	cfg := b.cfg
	rt, _, err := b.startRuntime(ctx, 1, cfg.VerifyBytes+64*mib, discardSink{}, nil)
	if err != nil {
		return 0, err
	}
	var elapsed time.Duration
	err = func() error {
		shard, err := b.sealPattern(ctx, rt.Seal, 0, "large", cfg.VerifyBytes)
		if err != nil {
			return err
		}
		start := time.Now()
		for range cfg.VerifyRounds {
			if err := rt.Verify(ctx, shard); err != nil {
				return err
			}
		}
		elapsed = time.Since(start)
		return nil
	}()
	return mbps(cfg.VerifyBytes*int64(cfg.VerifyRounds), elapsed), stopRuntime(rt, err)
}

// passClock keeps when each background scrub pass ended and the bytes it
// found intact.
type passClock struct {
	mu    sync.Mutex
	ends  []time.Time
	bytes []int64
}

// record is Config.OnScrubPass.
func (c *passClock) record(p supervisor.ScrubPass) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ends = append(c.ends, p.Time)
	c.bytes = append(c.bytes, p.Bytes)
}

// since takes as its origin the end of the first pass to end after from
// (that pass may have begun before from, with fewer shards: its bytes do
// not count) and returns the bytes of the passes that ended after it, how
// many they are, and the time from the origin to the last one's end. Every
// pass counted began after the origin, so the time holds whole passes and
// the pauses between them, nothing else.
func (c *passClock) since(from time.Time) (bytes int64, passes int, span time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	origin := -1
	for i, end := range c.ends {
		switch {
		case origin < 0 && !end.Before(from):
			origin = i
		case origin >= 0:
			bytes += c.bytes[i]
			passes++
			span = end.Sub(c.ends[origin])
		}
	}
	return bytes, passes, span
}

// wait waits for d or ctx's end.
func wait(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
