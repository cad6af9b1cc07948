package gpuhealth

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// evictTarget is the part of the runtime an evictor needs.
type evictTarget interface {
	Evict(ctx context.Context, device int, reason string) ([]sealer.Shard, error)
}

// evictor evicts devices' shards on its own goroutine, so that the NVML
// contention monitor, whose callback must not block, can ask for an eviction
// and carry on. Requests for a device wait in a set until the goroutine takes
// them; a newer request for the same device replaces the older. stop ends the
// goroutine and waits for it, letting an eviction under way finish.
type evictor struct {
	rt     evictTarget
	logger *slog.Logger
	// wake holds one token while requests wait: one wake-up takes them all.
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	pending map[int]string // device -> reason
}

// startEvictor starts an evictor's goroutine over rt.
func startEvictor(rt evictTarget, logger *slog.Logger) *evictor {
	ctx, cancel := context.WithCancel(context.Background())
	e := &evictor{
		rt: rt, logger: logger,
		wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{}),
		pending: map[int]string{},
	}
	go func() {
		defer close(e.done)
		e.run(ctx)
	}()
	return e
}

// request asks for device's shards to be evicted, for reason. It never blocks.
func (e *evictor) request(device int, reason string) {
	e.mu.Lock()
	e.pending[device] = reason
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default: // a wake-up is already waiting; it will see this request
	}
}

// stop ends the goroutine, after any eviction under way, and waits for it.
// Requests not yet taken are dropped. Later calls do nothing.
func (e *evictor) stop() {
	e.cancel()
	<-e.done
}

// run evicts what is requested until ctx ends.
func (e *evictor) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
		}
		e.mu.Lock()
		batch := e.pending
		e.pending = map[int]string{}
		e.mu.Unlock()
		for _, device := range slices.Sorted(maps.Keys(batch)) {
			if ctx.Err() != nil {
				return
			}
			e.evict(ctx, device, batch[device])
		}
	}
}

// evict evicts one device's shards and logs the outcome; the runtime has
// audited it.
func (e *evictor) evict(ctx context.Context, device int, reason string) {
	freed, err := e.rt.Evict(ctx, device, reason)
	switch {
	case errors.Is(err, messages.ErrStopped):
		e.logger.Info("eviction skipped: the worker is stopping", "device", device, "reason", reason)
	case err != nil:
		e.logger.Error("eviction failed", "device", device, "reason", reason, "freed_shards", len(freed), "error", err)
	default:
		e.logger.Warn("evicted every shard on the device", "device", device, "reason", reason, "freed_shards", len(freed))
	}
}
