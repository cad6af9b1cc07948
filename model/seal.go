package model

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/vramseal/vramseal/internal/parallel"
	"github.com/vramseal/vramseal/internal/units"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
	"github.com/vramseal/vramseal/supervisor"
)

// SealOptions say how SealAll reports its progress.
type SealOptions struct {
	// Track, if set, is called as each source's seal begins, with the
	// device it goes to and the reader its bytes come from; the seal reads
	// the reader Track returns instead (to count the bytes, say), and calls
	// done once the seal has ended.
	Track func(src *Source, device int, data io.Reader) (tracked io.Reader, done func())
	// Logger logs each shard sealed; nil logs nothing.
	Logger *slog.Logger
}

// SealAll seals every source through rt, up to one per core at a time, each
// onto the device Place gives it, streaming through the runtime's staging
// buffers: a source is never held whole in memory. The first failure
// cancels the seals still running and is the error returned; the shards are
// those sealed, in source order. A file that changed while it was sealed is
// a *FileError; a file that is not the published model,
// messages.ErrModelRejected.
func SealAll(ctx context.Context, rt *supervisor.Runtime, srcs []*Source, opts SealOptions) ([]sealer.Shard, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	devices, err := Place(ctx, rt, srcs)
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
	parallel.Each(runtime.GOMAXPROCS(0), len(srcs), func(i int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		shard, err := sealOne(ctx, rt, srcs[i], devices[i], opts)
		if err != nil {
			once.Do(func() { first = err }) // before cancel, so no cancelled seal's error wins
			cancel()
			return err
		}
		results[i], sealed[i] = shard, true
		return nil
	})
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

// sealOne streams one source onto device.
func sealOne(ctx context.Context, rt *supervisor.Runtime, src *Source, device int, opts SealOptions) (sealer.Shard, error) {
	data, done := src.data, func() {}
	if opts.Track != nil {
		data, done = opts.Track(src, device, src.data)
	}
	start := time.Now()
	shard, err := rt.Seal(ctx, messages.SealRequest{
		Device: device, ID: src.ID, Data: data, Size: src.Size,
		ModelRef: src.ModelRef, ShardIndex: src.Index, TotalShards: src.Total,
		Tensors: src.Tensors, Check: src.sealCheck(),
	})
	done()
	if changed := src.changedWhileSealed(); err != nil && changed != nil {
		return sealer.Shard{}, changed
	}
	if err != nil {
		return sealer.Shard{}, fmt.Errorf("%s: %w", src.Name, err)
	}
	elapsed := time.Since(start)
	opts.Logger.Info("sealed", "shard", shard.ID, "device", shard.Device, "size", shard.Size, "digest", shard.Digest,
		"elapsed", elapsed.Round(time.Millisecond), "rate", units.Rate(shard.Size, elapsed))
	return shard, nil
}

// sealCheck is the source's check as the runtime takes it; nil when it has
// none (not a typed nil inside the interface).
func (s *Source) sealCheck() messages.SealCheck {
	if s.check == nil {
		return nil
	}
	return s.check
}

// VerifyAll proves every shard intact once, in order, through rt, as a
// worker does before it reports ready (the background scrub keeps proving
// them); logger, if not nil, logs each.
func VerifyAll(ctx context.Context, rt *supervisor.Runtime, shards []sealer.Shard, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	for _, s := range shards {
		start := time.Now()
		if err := rt.Verify(ctx, s); err != nil {
			return err
		}
		elapsed := time.Since(start)
		logger.Info("verified", "shard", s.ID, "device", s.Device, "elapsed", elapsed.Round(time.Millisecond), "rate", units.Rate(s.Size, elapsed))
	}
	return nil
}
