package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
	"github.com/vramseal/vramseal/supervisor"
)

// sealSources seals every source, up to one per core at a time, each onto
// the device placeSources gives it. The first failure cancels the seals
// still running and is the error returned; the shards are those sealed, in
// source order.
func sealSources(ctx context.Context, rt *supervisor.Runtime, srcs []*modelSource, p *progress, logger *slog.Logger) ([]sealer.Shard, error) {
	devices, err := placeSources(ctx, rt, srcs)
	if err != nil {
		return nil, err
	}
	// Cancelling tells the other seals to stop; the first error is kept
	// apart, so that theirs (which name the cancellation) do not replace it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]sealer.Shard, len(srcs))
	sealed := make([]bool, len(srcs))
	var first error
	var once sync.Once
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(srcs)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(srcs) && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				shard, err := sealSource(ctx, rt, srcs[i], devices[i], p, logger)
				if err != nil {
					once.Do(func() { first = err })
					cancel()
					return
				}
				results[i], sealed[i] = shard, true
			}
		})
	}
	wg.Wait()
	shards := make([]sealer.Shard, 0, len(srcs))
	for i, s := range results {
		if sealed[i] {
			shards = append(shards, s)
		}
	}
	if first == nil {
		first = ctx.Err() // the caller's context ended
	}
	return shards, first
}

// sealSource streams one source onto device through the runtime's staging
// buffers; the source is never held whole in memory.
func sealSource(ctx context.Context, rt *supervisor.Runtime, src *modelSource, device int, p *progress, logger *slog.Logger) (sealer.Shard, error) {
	data, done := p.track(src, device)
	start := time.Now()
	shard, err := rt.Seal(ctx, messages.SealRequest{
		Device: device, ID: src.id, Data: data, Size: src.size,
		ModelRef: src.modelRef, ShardIndex: src.index, TotalShards: src.total,
		Tensors: src.tensors, Check: sealCheck(src),
	})
	done()
	if changed := src.changedWhileSealed(); err != nil && changed != nil {
		return sealer.Shard{}, changed
	}
	if errors.Is(err, messages.ErrModelRejected) {
		return sealer.Shard{}, withExitCode(exitModelRejected, fmt.Errorf("%s: %w", src.name, err))
	}
	if err != nil {
		return sealer.Shard{}, fmt.Errorf("%s: %w", src.name, err)
	}
	elapsed := time.Since(start)
	logger.Info("sealed", "shard", shard.ID, "device", shard.Device, "size", shard.Size, "digest", shard.Digest,
		"elapsed", elapsed.Round(time.Millisecond), "rate", messages.HumanRate(shard.Size, elapsed))
	return shard, nil
}

// verifyShards proves every shard intact once, before the worker reports
// ready; the background scrub keeps proving it.
func verifyShards(ctx context.Context, rt *supervisor.Runtime, shards []sealer.Shard, logger *slog.Logger) error {
	for _, s := range shards {
		start := time.Now()
		if err := rt.Verify(ctx, s); err != nil {
			return err
		}
		elapsed := time.Since(start)
		logger.Info("verified", "shard", s.ID, "device", s.Device, "elapsed", elapsed.Round(time.Millisecond), "rate", messages.HumanRate(s.Size, elapsed))
	}
	return nil
}
