package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vramseal/vramseal/internal/rehash"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// VerifierConfig configures one device's background verifier.
type VerifierConfig struct {
	// GPU is the actor that owns the device being scrubbed.
	GPU *GPURef
	// Interval is the pause between the end of one full pass and the start
	// of the next.
	Interval time.Duration
	// Rehash tunes the re-hash; its Limiter bounds the scrub rate.
	Rehash rehash.Options
	// Now tells the time.
	Now func() time.Time
	// Logger receives the verifier's log lines.
	Logger *slog.Logger
	// OnVerified makes durable the record that every shard in matched fully
	// matched, and returns those it recorded; only they are then marked
	// verified. A shard not recorded is logged.
	OnVerified func(ctx context.Context, matched []sealer.Shard) []sealer.Shard
	// OnPass, if set, is called at the end of every pass that re-hashed
	// every shard (after their records) or found a mismatch, with what the
	// pass did. It must not block on the verifier.
	OnPass func(PassReport)
	// OnFailure is called once with the error that ended scrubbing for good:
	// an integrity failure or a device fault. It must not block on the
	// verifier.
	OnFailure func(err error)
	// BeforePass, if set, runs in the verifier's mailbox at the start of
	// every pass. It is a test hook: a panic in it is a panic in the
	// verifier.
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

// VerifierRef is the handle of one device's background verifier.
type VerifierRef struct {
	root *actor.RootContext
	pid  *actor.PID
	// stopped is closed by the verifier parent once the verifier has
	// stopped.
	stopped <-chan struct{}
}

// Stop stops the verifier and waits until it and its hashing have ended.
func (r *VerifierRef) Stop() {
	r.root.Stop(r.pid)
	<-r.stopped
}

// verifierMessage is implemented by every message the verifier accepts;
// TestMessageSwitchesAreExhaustive checks that its Receive handles each.
type verifierMessage interface{ verifierMessage() }

// tick starts a pass; the verifier schedules it into its own mailbox.
type tick struct{}

// passEnded reports a pass's end from the goroutines that ran it.
type passEnded struct {
	run *passRun
	err error
}

// passPanicked carries a panic in a pass's goroutines into the mailbox, so
// that supervision sees it.
type passPanicked struct {
	run   *passRun
	value any
}

func (*tick) verifierMessage()         {}
func (*passEnded) verifierMessage()    {}
func (*passPanicked) verifierMessage() {}

var _ = []verifierMessage{(*tick)(nil), (*passEnded)(nil), (*passPanicked)(nil)}

// passRun is one pass in progress: its hashing runs on goroutines the
// verifier owns, and stops within one chunk once cancelled.
type passRun struct {
	cancel  context.CancelFunc
	running sync.WaitGroup
}

// verifier is the actor that scrubs one device. Its mailbox drives the
// passes: a scheduled tick starts one, its end schedules the next.
type verifier struct {
	cfg   VerifierConfig
	timer *time.Timer
	run   *passRun
}

// Receive handles one message.
func (v *verifier) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		v.schedule(c)
	case *tick:
		v.timer = nil
		if v.cfg.BeforePass != nil {
			v.cfg.BeforePass()
		}
		v.start(c)
	case *passEnded:
		if m.run != v.run {
			return // from before a restart
		}
		v.run.running.Wait()
		v.run = nil
		if m.err != nil {
			v.cfg.OnFailure(m.err)
			return
		}
		v.schedule(c)
	case *passPanicked:
		if m.run == v.run {
			panic(m.value)
		}
	case *actor.Restarting, *actor.Stopping:
		v.halt()
	}
}

func (v *verifier) schedule(c actor.Context) {
	self, root := c.Self(), c.ActorSystem().Root
	v.timer = time.AfterFunc(v.cfg.Interval, func() { root.Send(self, &tick{}) })
}

// start runs a pass on goroutines the verifier owns.
func (v *verifier) start(c actor.Context) {
	self, root := c.Self(), c.ActorSystem().Root
	ctx, cancel := context.WithCancel(context.Background())
	run := &passRun{cancel: cancel}
	v.run = run
	run.running.Go(func() {
		defer func() {
			if p := recover(); p != nil {
				// No stack: its frames' arguments may be device addresses,
				// which never reach a log.
				v.cfg.Logger.Error("verifier panicked", "device", v.cfg.GPU.Index(), "panic", fmt.Sprint(p))
				root.Send(self, &passPanicked{run: run, value: p})
			}
		}()
		err := v.pass(ctx)
		root.Send(self, &passEnded{run: run, err: err})
	})
}

// halt stops the timer and any pass, and waits for its goroutines.
func (v *verifier) halt() {
	if v.timer != nil {
		v.timer.Stop()
		v.timer = nil
	}
	if v.run != nil {
		v.run.cancel()
		v.run.running.Wait()
		v.run = nil
	}
}

// pass re-hashes every live shard once, with one pool of workers over all
// their chunks, records each shard that fully matched and only then marks
// it verified. It returns only fatal errors.
func (v *verifier) pass(ctx context.Context) error {
	start := v.cfg.Now()
	views, err := v.cfg.GPU.Snapshot(ctx)
	if err != nil {
		return nil // stopping
	}
	shards := make([]rehash.Shard, len(views))
	for i, view := range views {
		shards[i] = view.Shard
	}
	var mu sync.Mutex
	var matched []sealer.Shard
	var bytes int64
	err = rehash.VerifyAll(ctx, v.cfg.GPU, shards, v.cfg.Rehash, func(i int) {
		mu.Lock()
		matched = append(matched, shards[i].Record)
		bytes += shards[i].Record.Size
		mu.Unlock()
	})
	if len(matched) > 0 && ctx.Err() == nil {
		at := v.cfg.Now()
		for _, rec := range v.cfg.OnVerified(ctx, matched) {
			v.cfg.GPU.MarkVerified(rec, at)
		}
	}
	var integrity *messages.IntegrityError
	switch {
	case ctx.Err() != nil, errors.Is(err, messages.ErrStopped):
		return nil
	case err == nil:
		v.report(len(matched), bytes, 0, start)
		return nil
	case errors.As(err, &integrity):
		v.report(len(matched), bytes, 1, start)
		return err
	case messages.IsFatal(err):
		return err
	default:
		return fmt.Errorf("scrub device %d: %w: %w", v.cfg.GPU.Index(), messages.ErrDeviceFault, err)
	}
}

// report tells OnPass what a pass did.
func (v *verifier) report(shards int, bytes int64, mismatches int, start time.Time) {
	if v.cfg.OnPass != nil {
		v.cfg.OnPass(PassReport{Shards: shards, Bytes: bytes, Mismatches: mismatches, Start: start, End: v.cfg.Now()})
	}
}
