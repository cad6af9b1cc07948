package stress

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/vramseal/vramseal/supervisor"
)

// smallShardSize is the shard verified beside a big seal.
const smallShardSize = 64 << 10

// verifyBesideBigSeal verifies a small shard over and over while a BigSeal
// seal streams onto the same device, and reports the verifies' p99.
func (b *bencher) verifyBesideBigSeal(ctx context.Context, _ float64) (BenchResult, error) {
	cfg := b.cfg
	rt, _, err := b.startRuntime(ctx, 1, cfg.BigSeal+64*mib, discardSink{}, nil)
	if err != nil {
		return BenchResult{}, err
	}
	lat, err := func() (Latency, error) {
		small, err := b.sealPattern(ctx, rt.Seal, 0, "small", smallShardSize)
		if err != nil {
			return Latency{}, err
		}
		var bigErr error
		bigDone := make(chan struct{})
		var big sync.WaitGroup
		big.Go(func() {
			defer close(bigDone)
			_, bigErr = b.sealPattern(ctx, rt.Seal, 0, "big", cfg.BigSeal)
		})
		var ds []time.Duration
		var verifyErr error
		for verifyErr == nil && !closed(bigDone) {
			start := time.Now()
			verifyErr = rt.Verify(ctx, small)
			ds = append(ds, time.Since(start))
		}
		big.Wait()
		if bigErr != nil {
			return Latency{}, bigErr
		}
		return summarize(ds), verifyErr
	}()
	if err := stopRuntime(rt, err); err != nil {
		return BenchResult{}, fmt.Errorf("bench verify beside a big seal: %w", err)
	}
	return p99Below(verifyP99Row, "ms", time.Millisecond, lat, verifyP99Target,
		fmt.Sprintf("%d verifies of a %s shard while a %s seal ran on the same device (4 MiB chunks); p50 %v, max %v",
			lat.Count, humanBytes(smallShardSize), humanBytes(cfg.BigSeal), lat.P50.Round(time.Microsecond), lat.Max.Round(time.Microsecond))), nil
}

// sealHostMemory seals BigSeal bytes from a stream and reports the host
// memory allocated meanwhile, less the simulated device's own allocation
// (the "VRAM", which a Sim keeps in host memory).
func (b *bencher) sealHostMemory(ctx context.Context, _ float64) (BenchResult, error) {
	cfg := b.cfg
	rt, _, err := b.startRuntime(ctx, 1, cfg.BigSeal+64*mib, discardSink{}, nil)
	if err != nil {
		return BenchResult{}, err
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = b.sealPattern(ctx, rt.Seal, 0, "big", cfg.BigSeal)
	runtime.ReadMemStats(&after)
	if err := stopRuntime(rt, err); err != nil {
		return BenchResult{}, fmt.Errorf("bench seal host memory: %w", err)
	}
	staging := float64(int64(after.TotalAlloc-before.TotalAlloc)-cfg.BigSeal) / float64(mib)
	chunk := float64(supervisor.DefaultChunkSize) / float64(mib)
	return BenchResult{
		Name: stagingRow.Name, Unit: "MiB", Measured: staging, Reference: chunk, Ratio: staging / chunk,
		Target: stagingRow.Want, Pass: staging/chunk <= stagingMaxChunks,
		Note: fmt.Sprintf("bytes allocated on the host while sealing %s from a stream, less the simulated device's %s; reference is one 4 MiB chunk",
			humanBytes(cfg.BigSeal), humanBytes(cfg.BigSeal)),
	}, nil
}

// closed reports whether ch is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
