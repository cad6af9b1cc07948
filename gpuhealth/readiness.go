package gpuhealth

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/vramseal/vramseal/audit"
)

// Readiness decides whether a worker is ready (its /readyz): once sealing is
// done, every shard has been fully verified within the freshness window, no
// device was evicted, every GPU is fit to hold weights, and nothing has
// failed. It is safe for concurrent use.
type Readiness struct {
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
	// warning, when set, is said beside a ready answer: something an
	// operator should know that does not make the worker unready.
	warning string
}

// Warn sets a warning that a ready answer carries: something an operator
// should know that does not make the worker unready, such as a scrub too
// slow for its interval.
func (r *Readiness) Warn(warning string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.warning = warning
}

// Warning is the warning a ready answer carries, or "".
func (r *Readiness) Warning() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.warning
}

// NewReadiness returns a Readiness that is not ready until SealingDone. gpus,
// such as Watch.NotReady, says why a GPU may not hold sealed weights now; it
// may be nil: simulated devices, or real ones without NVML.
func NewReadiness(gpus func() error) *Readiness {
	return &Readiness{gpus: gpus, expected: -1, evicted: map[int]string{}}
}

// Evicted says that device's shards were, or are being, evicted, and why;
// the worker is not ready from then on.
func (r *Readiness) Evicted(device int, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evicted[device] = reason
}

// SealingDone says that shards shards were sealed and verified and no more
// will be, and how fresh their verification must stay.
func (r *Readiness) SealingDone(shards int, window time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expected, r.window = shards, window
}

// Observe notes a failed verification or a fail-stop in the audit trail; give
// it every record the runtime writes.
func (r *Readiness) Observe(rec audit.Record) {
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

// Check returns nil when ready, or an error that says why not. stopped is
// closed once the runtime has stopped.
func (r *Readiness) Check(ctx context.Context, rt ShardLister, stopped <-chan struct{}, now time.Time) error {
	r.mu.Lock()
	expected, window, failure := r.expected, r.window, r.failure
	evicted := maps.Clone(r.evicted)
	r.mu.Unlock()
	if failure != "" {
		return fmt.Errorf("integrity failure: %s", failure)
	}
	select {
	case <-stopped:
		return fmt.Errorf("worker stopped")
	default:
	}
	if len(evicted) > 0 {
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
