package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vramseal/vramseal/messages"
)

// VerifierConfig configures one device's background verifier.
type VerifierConfig struct {
	// GPU is the actor that owns the device being scrubbed.
	GPU *GPURef
	// Interval is the pause between the end of one full pass and the start
	// of the next.
	Interval time.Duration
	// Verify tunes each shard's re-hash; its Limiter bounds the scrub rate.
	Verify VerifyOptions
	// Now tells the time.
	Now func() time.Time
	// Logger receives the verifier's log lines.
	Logger *slog.Logger
	// OnVerified records that a shard fully matched; it is called for each
	// such shard at the end of a pass, concurrently; the shard is marked
	// verified only if it returns nil. Its errors are logged.
	OnVerified func(ctx context.Context, v ShardView) error
	// OnFailure is called once with the error that ended scrubbing for good:
	// an integrity failure or a device fault. It must not block on the
	// verifier.
	OnFailure func(err error)
	// OnPass, if set, is called at the end of every pass that re-hashed
	// every shard (after their records) or found a mismatch, with what the
	// pass did. It must not block on the verifier.
	OnPass func(PassReport)
	// BeforePass, if set, runs at the start of every pass. It is a test
	// hook: a panic in it is a panic in the verifier.
	BeforePass func()
}

// PassReport is what one background scrub pass of a device did.
type PassReport struct {
	// Shards and Bytes count the shards the pass found intact and their size.
	Shards int
	Bytes  int64
	// Mismatches counts the shards whose memory no longer matched their
	// seal: the pass stops at the first.
	Mismatches int
	// Start and End are when the pass began and ended.
	Start, End time.Time
}

// scrubPanicked carries a panic from the scrub loop into the actor, so that
// supervision sees it.
type scrubPanicked struct{ value any }

func (*scrubPanicked) isVerifierMessage() {}

// verifierMessage is implemented by every message the verifier accepts.
type verifierMessage interface{ isVerifierMessage() }

var _ verifierMessage = (*scrubPanicked)(nil)

// verifier is the actor that scrubs one device. The hashing runs on a loop
// goroutine the actor owns: started when the actor starts, stopped and waited
// for when it stops or restarts.
type verifier struct {
	cfg     VerifierConfig
	ref     *VerifierRef
	cancel  context.CancelFunc
	running sync.WaitGroup
}

// Receive handles one message.
func (v *verifier) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		ctx, cancel := context.WithCancel(context.Background())
		v.cancel = cancel
		self, root := c.Self(), c.ActorSystem().Root
		v.running.Go(func() { v.loop(ctx, func(p any) { root.Send(self, &scrubPanicked{value: p}) }) })
	case *actor.Restarting, *actor.Stopping:
		v.stopLoop()
	case *actor.Stopped:
		close(v.ref.stopped)
	case *scrubPanicked:
		panic(m.value)
	}
}

func (v *verifier) stopLoop() {
	if v.cancel != nil {
		v.cancel()
		v.running.Wait()
		v.cancel = nil
	}
}

// loop runs a full pass every Interval until ctx ends or a pass finds a
// fatal error.
func (v *verifier) loop(ctx context.Context, reportPanic func(any)) {
	defer func() {
		if p := recover(); p != nil {
			v.cfg.Logger.Error("verifier panicked", "device", v.cfg.GPU.index, "panic", p, "stack", string(debug.Stack()))
			reportPanic(p)
		}
	}()
	timer := time.NewTimer(v.cfg.Interval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if err := v.pass(ctx); err != nil {
			if ctx.Err() == nil {
				v.cfg.OnFailure(err)
			}
			return
		}
		timer.Reset(v.cfg.Interval)
	}
}

// pass re-hashes every shard once, with one pool of workers over all their
// chunks, and records each shard that fully matched. It returns only fatal
// errors.
func (v *verifier) pass(ctx context.Context) error {
	if v.cfg.BeforePass != nil {
		v.cfg.BeforePass()
	}
	start := v.cfg.Now()
	views, err := v.cfg.GPU.Snapshot(ctx)
	if err != nil {
		return nil // stopping
	}
	var mu sync.Mutex
	var matched []ShardView
	err = VerifyShards(ctx, v.cfg.GPU, views, v.cfg.Verify, func(view ShardView) {
		view.LastVerified = v.cfg.Now()
		mu.Lock()
		matched = append(matched, view)
		mu.Unlock()
	})
	v.recordVerified(ctx, matched)
	var integrity *IntegrityError
	switch {
	case ctx.Err() != nil, errors.Is(err, messages.ErrStopped):
		return nil
	case err == nil:
		v.report(matched, 0, start)
		return nil
	case errors.As(err, &integrity):
		v.report(matched, 1, start)
		return err
	case messages.IsFatal(err):
		return err
	default:
		return fmt.Errorf("scrub device %d: %w: %w", v.cfg.GPU.index, messages.ErrDeviceFault, err)
	}
}

// report tells OnPass what a pass did.
func (v *verifier) report(matched []ShardView, mismatches int, start time.Time) {
	if v.cfg.OnPass == nil {
		return
	}
	r := PassReport{Shards: len(matched), Mismatches: mismatches, Start: start, End: v.cfg.Now()}
	for _, view := range matched {
		r.Bytes += view.Record.Size
	}
	v.cfg.OnPass(r)
}

// recordVerified records the shards a pass matched, all at once, so that a
// group-committing audit log makes them durable together, and marks each
// verified once its record is durable.
func (v *verifier) recordVerified(ctx context.Context, views []ShardView) {
	var wg sync.WaitGroup
	for _, view := range views {
		wg.Go(func() {
			if err := v.cfg.OnVerified(ctx, view); err != nil {
				if ctx.Err() == nil {
					v.cfg.Logger.Warn("scrub result not recorded", "device", v.cfg.GPU.index, "shard", view.Record.ID, "err", err)
				}
				return
			}
			v.cfg.GPU.MarkVerified(view)
		})
	}
	wg.Wait()
}

// VerifierRef is the handle of one device's background verifier.
type VerifierRef struct {
	root    *actor.RootContext
	pid     *actor.PID
	stopped chan struct{}
}

// SpawnVerifier starts a background verifier under the given supervision
// strategy.
func SpawnVerifier(root *actor.RootContext, cfg VerifierConfig, strategy actor.SupervisorStrategy) (*VerifierRef, error) {
	ref := &VerifierRef{root: root, stopped: make(chan struct{})}
	props := actor.PropsFromProducer(func() actor.Actor { return &verifier{cfg: cfg, ref: ref} }, actor.WithGuardian(strategy))
	pid, err := root.SpawnNamed(props, fmt.Sprintf("verifier-%d", cfg.GPU.index))
	if err != nil {
		return nil, fmt.Errorf("spawn verifier %d: %w", cfg.GPU.index, err)
	}
	ref.pid = pid
	return ref, nil
}

// Stop stops the verifier and waits until its loop has ended.
func (r *VerifierRef) Stop() {
	r.root.Stop(r.pid)
	<-r.stopped
}
