// Package supervisor is vramseal's embedding API: Start spawns one GPU actor
// and one background verifier per device, supervises them, and fail-stops the
// worker on any integrity failure.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	"golang.org/x/time/rate"

	"github.com/vramseal/vramseal/actors"
	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
)

// Runtime seals shards onto GPUs and keeps proving them intact. It is safe
// for concurrent use by thousands of callers; every call honours its context
// and returns messages.ErrStopped once the runtime is stopping.
type Runtime struct {
	cfg       Config
	system    *actor.ActorSystem
	gpus      []*actors.GPURef
	verifiers []*actors.VerifierRef
	buffers   *actors.BufferPool
	ids       *idRegistry
	calls     *gate

	mu       sync.Mutex
	stopping bool
	cause    error
	// stopCtx is cancelled, with ErrStopped as its cause, when stopping
	// begins.
	stopCtx  context.Context
	stopNow  context.CancelCauseFunc
	done     chan struct{} // closed when stopped
	shutdown sync.WaitGroup
	stopErr  error // set before done closes
}

// Start checks cfg and the VRAM-only policy, spawns the actors and returns a
// running Runtime; it records WorkerStarted before returning. From the call
// on, the runtime owns cfg.Devices: it closes them when it stops, or before
// returning an error.
func Start(ctx context.Context, cfg Config) (*Runtime, error) {
	cfg, err := cfg.withDefaults()
	if err == nil {
		err = checkPolicy(ctx, cfg)
	}
	if err != nil {
		closeDevices(cfg.Devices)
		return nil, err
	}
	r := &Runtime{
		cfg:     cfg,
		buffers: actors.NewBufferPool(cfg.ChunkSize, stagingBytes(cfg.ChunkSize)),
		ids:     newIDRegistry(),
		calls:   newGate(),
		done:    make(chan struct{}),
	}
	r.stopCtx, r.stopNow = context.WithCancelCause(context.Background())
	r.system = actors.NewSystem(cfg.Logger.With("component", "protoactor"))
	if err := r.record(ctx, audit.Record{Event: audit.EventWorkerStarted, Severity: audit.SeverityInfo, Fields: map[string]any{
		"devices": len(cfg.Devices), "key_fingerprint": cfg.Key.Fingerprint(), "chunk_size": cfg.ChunkSize,
		"vram_policy": "passed",
	}}); err != nil {
		r.system.Shutdown()
		closeDevices(cfg.Devices)
		return nil, fmt.Errorf("start: %w", err)
	}
	err = r.spawn()
	// Shutdown may start as soon as the actors run, but it reads the
	// actor lists, so it waits for spawn to finish filling them.
	r.shutdown.Add(1)
	go r.stopWhenAsked()
	if err != nil {
		r.beginStop(err)
		<-r.done
		r.shutdown.Wait()
		return nil, err
	}
	return r, nil
}

// spawn starts one GPU actor and, if scrubbing is on, one verifier per device.
func (r *Runtime) spawn() error {
	gpuStrategy := actors.NewGPUStrategy(r.fail)
	verifierStrategy := actors.NewVerifierStrategy(VerifierMaxRestarts, VerifierRestartWindow, r.fail)
	for i, dev := range r.cfg.Devices {
		gcfg := actors.GPUConfig{Index: i, Device: dev, Headroom: r.cfg.Headroom, Logger: r.cfg.Logger}
		if hook := r.cfg.hooks.gpuMessage; hook != nil {
			gcfg.OnMessage = func(msg any) { hook(i, msg) }
		}
		g, err := actors.SpawnGPU(r.system.Root, gcfg, gpuStrategy)
		if err != nil {
			return err
		}
		r.gpus = append(r.gpus, g)
	}
	if r.cfg.VerifyInterval == 0 {
		return nil
	}
	for _, g := range r.gpus {
		vcfg := actors.VerifierConfig{
			GPU:        g,
			Interval:   r.cfg.VerifyInterval,
			Verify:     r.verifyOptions(r.scrubLimiter()),
			Now:        r.cfg.Now,
			Logger:     r.cfg.Logger,
			OnVerified: func(ctx context.Context, v actors.ShardView) error { return r.recordVerified(ctx, v.Record, "scrub") },
			OnFailure:  r.failIntegrity,
			OnPass:     r.scrubPassReporter(g.Index()),
		}
		if hook := r.cfg.hooks.beforeScrubPass; hook != nil {
			vcfg.BeforePass = func() { hook(g.Index()) }
		}
		v, err := actors.SpawnVerifier(r.system.Root, vcfg, verifierStrategy)
		if err != nil {
			return err
		}
		r.verifiers = append(r.verifiers, v)
	}
	return nil
}

func (r *Runtime) scrubLimiter() *rate.Limiter {
	if r.cfg.ScrubRate == 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(r.cfg.ScrubRate), int(r.cfg.ChunkSize))
}

func (r *Runtime) verifyOptions(limiter *rate.Limiter) actors.VerifyOptions {
	return actors.VerifyOptions{
		Workers:     runtime.GOMAXPROCS(0),
		Limiter:     limiter,
		ReadRetries: r.cfg.ReadRetries,
		Buffers:     r.buffers,
	}
}

// Done is closed once the runtime has stopped, for any reason.
func (r *Runtime) Done() <-chan struct{} { return r.done }

// Err is nil while running and after a graceful Stop; after a fail-stop it is
// the cause, wrapping ErrSealVerificationFailed, ErrDeviceFault or another
// fatal error kind.
func (r *Runtime) Err() error {
	select {
	case <-r.done:
	default:
		return nil
	}
	return r.cause
}

// Stop stops the runtime gracefully: no new calls, calls in flight end,
// scrubbing stops, every shard is freed and recorded, devices are closed.
// It is idempotent. It returns ctx's error if ctx ends first (shutdown goes
// on), or an error if freeing or recording failed.
func (r *Runtime) Stop(ctx context.Context) error {
	r.beginStop(nil)
	select {
	case <-r.done:
		r.shutdown.Wait()
		return r.stopErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enter admits a call, or returns ErrStopped. An admitted call must call
// r.calls.leave when it returns.
func (r *Runtime) enter() error {
	if !r.calls.enter() {
		return messages.ErrStopped
	}
	return nil
}

// untilStopping returns ctx, also cancelled with cause ErrStopped once the
// runtime starts stopping, for calls that may run long.
func (r *Runtime) untilStopping(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(r.stopCtx, func() { cancel(messages.ErrStopped) })
	return ctx, func() {
		stop()
		cancel(nil)
	}
}

// beginStop starts shutting down, once. A nil cause is a graceful stop.
func (r *Runtime) beginStop(cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping {
		return
	}
	r.stopping, r.cause = true, cause
	r.calls.close()
	r.stopNow(messages.ErrStopped)
}

// stopWhenAsked waits for beginStop, then shuts down.
func (r *Runtime) stopWhenAsked() {
	defer r.shutdown.Done()
	<-r.stopCtx.Done()
	r.stopErr = r.shutdownActors()
	close(r.done)
}

// shutdownActors lets calls in flight end, stops the verifiers, frees every
// shard through its GPU actor, stops the GPU actors, closes the devices and
// records WorkerStopped.
func (r *Runtime) shutdownActors() error {
	r.calls.wait()
	for _, v := range r.verifiers {
		v.Stop()
	}
	ctx := context.Background()
	var errs []error
	for _, g := range r.gpus {
		freed, err := g.Drain()
		if err != nil && !errors.Is(err, messages.ErrStopped) {
			errs = append(errs, err)
		}
		freed = append(freed, g.Stop()...)
		errs = append(errs, r.recordAllDeallocated(ctx, freed, "shutdown"))
	}
	errs = append(errs, closeDevices(r.cfg.Devices))
	stopped := audit.Record{Event: audit.EventWorkerStopped, Severity: audit.SeverityInfo, Fields: map[string]any{"graceful": r.cause == nil}}
	if r.cause != nil {
		stopped.Severity = audit.SeverityCritical
		stopped.Fields["cause"] = r.cause.Error()
	}
	if err := r.record(ctx, stopped); err != nil {
		errs = append(errs, err)
	}
	r.system.Shutdown()
	return errors.Join(errs...)
}

// closeDevices closes every device, freeing what each still holds.
func closeDevices(devices []cuda.Device) error {
	var errs []error
	for i, dev := range devices {
		if dev == nil {
			continue
		}
		if err := dev.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close device %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// stagingBytes bounds the host memory that seals and verifies stage data
// through at once: a few chunks per core, enough to keep every core hashing.
func stagingBytes(chunkSize int64) int64 {
	return int64(max(8, 4*runtime.GOMAXPROCS(0))) * chunkSize
}
