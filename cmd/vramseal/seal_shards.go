package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
	"github.com/vramseal/vramseal/supervisor"
)

// sealSources seals every source in order, each onto the device with the
// most memory available at the time.
func sealSources(ctx context.Context, rt *supervisor.Runtime, srcs []*modelSource, p *progress, logger *slog.Logger) ([]sealer.Shard, error) {
	shards := make([]sealer.Shard, 0, len(srcs))
	for _, src := range srcs {
		shard, err := sealSource(ctx, rt, src, p, logger)
		if err != nil {
			return shards, err
		}
		shards = append(shards, shard)
	}
	return shards, nil
}

// sealSource streams one source onto a device through the runtime's staging
// buffers; the source is never held whole in memory.
func sealSource(ctx context.Context, rt *supervisor.Runtime, src *modelSource, p *progress, logger *slog.Logger) (sealer.Shard, error) {
	device, err := placeShard(ctx, rt, src.size)
	if err != nil {
		return sealer.Shard{}, fmt.Errorf("%s: %w", src.name, err)
	}
	data, done := p.track(src, device)
	start := time.Now()
	shard, err := rt.Seal(ctx, messages.SealRequest{
		Device: device, ID: src.id, Data: data, Size: src.size,
		ModelRef: src.modelRef, ShardIndex: src.index, TotalShards: src.total,
	})
	done()
	if err != nil {
		return sealer.Shard{}, fmt.Errorf("%s: %w", src.name, err)
	}
	elapsed := time.Since(start)
	logger.Info("sealed", "shard", shard.ID, "device", shard.Device, "size", shard.Size, "digest", shard.Digest,
		"elapsed", elapsed.Round(time.Millisecond), "rate", rateString(shard.Size, elapsed))
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
		logger.Info("verified", "shard", s.ID, "device", s.Device, "elapsed", elapsed.Round(time.Millisecond), "rate", rateString(s.Size, elapsed))
	}
	return nil
}

// rateString is n bytes over d, in binary units per second.
func rateString(n int64, d time.Duration) string {
	if d <= 0 {
		return "n/a"
	}
	return messages.HumanBytes(int64(float64(n)/d.Seconds())) + "/s"
}
