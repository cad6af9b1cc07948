package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/vramseal/vramseal/audit"
)

// readiness decides /readyz: ready once sealing is done, every shard has been
// fully verified within the freshness window, no device was evicted, every
// GPU is fit to hold weights, and nothing has failed.
type readiness struct {
	// gpus, when set, says why a GPU may not hold sealed weights now (NVML's
	// view), or nil when all may.
	gpus func() error

	mu       sync.Mutex
	expected int // shards sealed; -1 while sealing
	// window is how recent a shard's last full verification must be; zero
	// means any verification since sealing will do.
	window  time.Duration
	failure string
	evicted map[int]string // device -> why its shards were evicted
}

// newReadiness returns a readiness that is not ready until sealingDone. gpus
// may be nil: simulated devices, or real ones without NVML.
func newReadiness(gpus func() error) *readiness {
	return &readiness{gpus: gpus, expected: -1, evicted: map[int]string{}}
}

// evict says that device's shards were, or are being, evicted, and why; the
// worker is not ready from then on.
func (r *readiness) evict(device int, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evicted[device] = reason
}

// sealingDone says that shards shards were sealed and verified and no more
// will be, and how fresh their verification must stay.
func (r *readiness) sealingDone(shards int, window time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expected, r.window = shards, window
}

// observe notes a failed verification or a fail-stop in the audit trail.
func (r *readiness) observe(rec audit.Record) {
	failed := rec.Event == audit.EventSealVerificationFailed ||
		(rec.Event == audit.EventWorkerStopped && rec.Severity == audit.SeverityCritical)
	if !failed {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failure == "" {
		r.failure = fmt.Sprintf("%s: %v", rec.Event, rec.Fields["error"])
		if rec.Event == audit.EventWorkerStopped {
			r.failure = fmt.Sprintf("%s: %v", rec.Event, rec.Fields["cause"])
		}
	}
}

// check returns nil when ready, or an error that says why not. stopped is
// closed once the runtime has stopped.
func (r *readiness) check(ctx context.Context, rt runtimeView, stopped <-chan struct{}, now time.Time) error {
	r.mu.Lock()
	expected, window, failure := r.expected, r.window, r.failure
	evicted := maps.Clone(r.evicted)
	r.mu.Unlock()
	switch {
	case failure != "":
		return fmt.Errorf("integrity failure: %s", failure)
	case isClosed(stopped):
		return fmt.Errorf("worker stopped")
	case len(evicted) > 0:
		device := slices.Min(slices.Collect(maps.Keys(evicted)))
		return fmt.Errorf("device %d evicted: %s", device, evicted[device])
	}
	if r.gpus != nil {
		if err := r.gpus(); err != nil {
			return err
		}
	}
	if expected < 0 {
		return fmt.Errorf("sealing in progress")
	}
	shards, err := rt.Shards(ctx)
	if err != nil {
		return fmt.Errorf("list shards: %w", err)
	}
	if len(shards) != expected {
		return fmt.Errorf("%d of %d sealed shards are live", len(shards), expected)
	}
	for _, s := range shards {
		if s.LastVerified.IsZero() {
			return fmt.Errorf("shard %q has not been verified since it was sealed", s.ID)
		}
		if age := now.Sub(s.LastVerified); window > 0 && age > window {
			return fmt.Errorf("shard %q was last verified %s ago, longer than the %s freshness window",
				s.ID, age.Round(time.Millisecond), window)
		}
	}
	return nil
}

// isClosed reports whether ch is closed, without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
