// Package supervisor is vramseal's embedding API. Open (from a token file)
// or Start returns a Runtime that seals shards onto GPUs (Seal), proves
// them intact (Verify, and a background scrub every VerifyInterval), lends
// their memory to inference code (Acquire -> Lease) and frees them (Free,
// Evict, Stop), fail-stopping the worker on any integrity failure. Every
// request and status type and every error kind a worker matches is
// declared here; a worker needs this package and one backend (cuda's Sim,
// or cuda/driver).
//
// Inside, Start spawns an actor tree (a supervisor over a GPU parent and a
// verifier parent) with one GPU actor (which alone owns its device's
// allocation table) and one background verifier per device. Copies and hashes run outside the actors' mailboxes,
// on the callers' goroutines, under leases the GPU actor grants: a seal's
// writes, a verify's reads, an embedder's Lease. A seal waiting for its
// reader holds neither a lease nor the runtime's call gate, so a stalled
// reader delays neither a fail-stop nor Stop: the seal's memory is taken
// back by the drain (revoked), and the seal returns once its reader does.
// Memory under a lease is never freed; a free waits until the last lease
// ends. ARCHITECTURE.md has the whole path.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"golang.org/x/time/rate"

	"github.com/vramseal/vramseal/actors"
	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/internal/rehash"
	"github.com/vramseal/vramseal/internal/staging"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// Runtime seals shards onto GPUs and keeps proving them intact. It is safe
// for concurrent use by thousands of callers; every call honours its context
// and returns ErrStopped once the runtime is stopping.
type Runtime struct {
	cfg        Config
	system     *actor.ActorSystem
	supervisor *actors.SupervisorRef
	gpus       []*actors.GPURef
	verifiers  []*actors.VerifierRef
	// sealBuffers stage seals; verifyBuffers, a reserve of their own, stage
	// Verify and the scrub, so that stalled seals can never starve them.
	sealBuffers   *staging.Pool
	verifyBuffers *staging.Pool
	ids           *idRegistry
	gens          *generations
	leases        *leaseSet
	leaseIDs      atomic.Uint64
	calls         *gate

	mu       sync.Mutex
	stopping bool
	cause    error
	// stopCtx is cancelled, with ErrStopped as its cause, when stopping
	// begins.
	stopCtx  context.Context
	stopNow  context.CancelCauseFunc
	done     chan struct{} // closed when stopped
	shutdown sync.WaitGroup
	// orphaned is signalled when a GPU actor freed an allocation whose
	// eviction had stopped waiting; orphanRecorder records it.
	orphaned       chan struct{}
	orphanRecorder sync.WaitGroup
	stopErr        error // set before done closes
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
		cfg:           cfg,
		sealBuffers:   staging.NewPool(cfg.ChunkSize, stagingBytes(cfg.ChunkSize)),
		verifyBuffers: staging.NewPool(cfg.ChunkSize, stagingBytes(cfg.ChunkSize)),
		ids:           newIDRegistry(),
		gens:          newGenerations(),
		leases:        newLeaseSet(),
		calls:         newGate(),
		done:          make(chan struct{}),
		orphaned:      make(chan struct{}, 1),
	}
	r.stopCtx, r.stopNow = context.WithCancelCause(context.Background())
	r.system = actors.NewSystem(cfg.Logger.With("component", "protoactor"))
	started := audit.Record{Event: audit.EventWorkerStarted, Severity: audit.SeverityInfo, Fields: map[string]any{
		"devices": len(cfg.Devices), "key_fingerprint": cfg.Key.Fingerprint(), "chunk_size": cfg.ChunkSize,
		"vram_policy": "passed",
	}}
	if cfg.Backend != "" {
		started.Fields["backend"] = cfg.Backend
	}
	if err := r.record(ctx, started); err != nil {
		r.system.Shutdown()
		closeDevices(cfg.Devices)
		return nil, fmt.Errorf("start: %w", err)
	}
	err = r.spawn()
	// Shutdown may start as soon as the actors run, but it reads the
	// actor lists, so it waits for spawn to finish filling them.
	r.orphanRecorder.Go(r.recordOrphans)
	if log := cfg.owned.auditLog(); log != nil {
		r.shutdown.Go(func() { r.watchLog(log) })
	}
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

// spawn starts the actor tree: one GPU actor and, if scrubbing is on, one
// verifier per device.
func (r *Runtime) spawn() error {
	sup, err := actors.SpawnSupervisor(r.system, actors.SupervisorConfig{
		VerifierMaxRestarts:   VerifierMaxRestarts,
		VerifierRestartWindow: VerifierRestartWindow,
		FailStop:              r.fail,
		Logger:                r.cfg.Logger,
	})
	if err != nil {
		return err
	}
	r.supervisor = sup
	for i, dev := range r.cfg.Devices {
		gcfg := actors.GPUConfig{Index: i, Device: dev, Headroom: r.cfg.Headroom, Logger: r.cfg.Logger, OnOrphan: r.orphanFreed}
		if hook := r.cfg.hooks.gpuMessage; hook != nil {
			gcfg.OnMessage = func(msg any) { hook(i, msg) }
		}
		if hook := r.cfg.hooks.acquireLeased; hook != nil {
			gcfg.OnAcquire = func() { hook(i) }
		}
		g, err := sup.SpawnGPU(gcfg)
		if err != nil {
			return err
		}
		r.gpus = append(r.gpus, g)
	}
	if r.cfg.NoScrub {
		return nil
	}
	for _, g := range r.gpus {
		vcfg := actors.VerifierConfig{
			GPU:      g,
			Interval: r.cfg.VerifyInterval,
			Rehash:   r.rehashOptions(r.scrubLimiter()),
			Now:      r.cfg.Now,
			Logger:   r.cfg.Logger,
			OnVerified: func(ctx context.Context, matched []sealer.Shard) []sealer.Shard {
				return r.recordScrubbed(ctx, matched)
			},
			OnPass:    r.scrubPassReporter(g.Index()),
			OnFailure: r.failIntegrity,
		}
		if hook := r.cfg.hooks.beforeScrubPass; hook != nil {
			vcfg.BeforePass = func() { hook(g.Index()) }
		}
		v, err := sup.SpawnVerifier(vcfg)
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

func (r *Runtime) rehashOptions(limiter *rate.Limiter) rehash.Options {
	return rehash.Options{
		Workers:     runtime.GOMAXPROCS(0),
		Limiter:     limiter,
		ReadRetries: r.cfg.ReadRetries,
		Buffers:     r.verifyBuffers,
	}
}

// Done is closed once the runtime has stopped, for any reason.
func (r *Runtime) Done() <-chan struct{} { return r.done }

// Err is nil while running and after a graceful Stop; once a fail-stop has
// begun (before Done closes, which waits for shutdown) it is the cause,
// wrapping ErrSealVerificationFailed, ErrDeviceFault, ErrSoftwareFault or
// another fatal error kind.
func (r *Runtime) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cause
}

// Stop stops the runtime gracefully: no new calls, calls in flight end,
// leases are revoked, scrubbing stops, every shard is freed and recorded,
// devices are closed. Memory under a lease is never freed while the lease
// is held: it is freed once the lease is released. It is idempotent. If ctx
// ends first it returns an error saying how many leases are still held
// (shutdown goes on, and completes when they are released); it also returns
// an error if freeing or recording failed. After a GPU actor's panic no
// lease can end: the memory leased then is left allocated (the process's
// exit reclaims it), its device is not closed, and Stop says how much,
// with an error wrapping ErrLeaseHeld.
func (r *Runtime) Stop(ctx context.Context) error {
	r.beginStop(nil)
	select {
	case <-r.done:
		r.shutdown.Wait()
		if n := r.leases.count(); n > 0 {
			return errors.Join(fmt.Errorf("stop: %d lease(s) still held: %w", n, messages.ErrLeaseHeld), r.stopErr)
		}
		return r.stopErr
	case <-ctx.Done():
		if n := r.leases.count(); n > 0 {
			return fmt.Errorf("stop: %d lease(s) still held, their memory is not freed: %w: %w", n, messages.ErrLeaseHeld, ctx.Err())
		}
		return fmt.Errorf("stop: %w", ctx.Err())
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

// beginStop starts shutting down, once: no new calls, and every lease is
// revoked. A nil cause is a graceful stop.
func (r *Runtime) beginStop(cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping {
		return
	}
	r.stopping, r.cause = true, cause
	r.calls.close()
	// Leases learn the cause before the drains that stopNow starts can
	// revoke them as merely stopped.
	revokeCause := cause
	if revokeCause == nil {
		revokeCause = messages.ErrStopped
	}
	r.leases.revokeAll(revokeCause)
	r.stopNow(messages.ErrStopped)
}

// failure is the cause of a fail-stop once one began, else nil.
func (r *Runtime) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cause
}

// stopWhenAsked waits for beginStop, then shuts down.
func (r *Runtime) stopWhenAsked() {
	defer r.shutdown.Done()
	<-r.stopCtx.Done()
	r.stopErr = errors.Join(r.shutdownActors(), r.cfg.owned.close())
	close(r.done)
}

// shutdownActors lets the calls in flight end (a seal waiting for its
// reader is not one), stops the verifiers, frees every allocation through
// its GPU actor (memory under a lease once the lease ends), all devices at
// once so that a lease on one delays none of the others, stops the actors,
// closes the devices and records WorkerStopped. A device whose GPU actor
// stopped with leased memory (after a panic) is not closed.
func (r *Runtime) shutdownActors() error {
	r.calls.wait()
	r.orphanRecorder.Wait() // the drains below record what is left
	for _, v := range r.verifiers {
		v.Stop()
	}
	ctx := context.Background()
	errs := make([]error, len(r.gpus))
	leased := make([]int, len(r.gpus))
	var drains sync.WaitGroup
	for i, g := range r.gpus {
		drains.Go(func() {
			freed, err := g.Drain(ctx, messages.ErrStopped)
			if err != nil && !errors.Is(err, messages.ErrStopped) {
				errs[i] = err
			}
			freed = append(freed, g.TakeOrphans()...)
			left, n := g.Stop()
			freed = append(freed, left...)
			leased[i] = n
			errs[i] = errors.Join(errs[i], r.recordFreed(ctx, freed, "shutdown", "stopped"))
		})
	}
	drains.Wait()
	if r.supervisor != nil {
		r.supervisor.Stop()
	}
	devices := slices.Clone(r.cfg.Devices)
	for i, n := range leased {
		if n > 0 {
			devices[i] = nil
			errs = append(errs, fmt.Errorf("device %d: %d leased allocation(s) not freed, the device left open: %w", i, n, messages.ErrLeaseHeld))
		}
	}
	errs = append(errs, closeDevices(devices))
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

// orphanFreed tells recordOrphans that a GPU actor holds an orphan. It is
// called from the actor, and does not block.
func (r *Runtime) orphanFreed() {
	select {
	case r.orphaned <- struct{}{}:
	default: // already told
	}
}

// recordOrphans records, as they happen, the frees of allocations whose
// Evict stopped waiting for their leases (what the Evict would have
// recorded), so that the trail shows them then and their IDs can be sealed
// again, not only at shutdown. It returns once stopping begins.
func (r *Runtime) recordOrphans() {
	for {
		select {
		case <-r.orphaned:
		case <-r.stopCtx.Done():
			return
		}
		for _, g := range r.gpus {
			if err := r.recordFreed(context.Background(), g.TakeOrphans(), "evict", "evicted"); err != nil {
				r.cfg.Logger.Warn("an eviction's late frees not recorded", "device", g.Index(), "err", err)
			}
		}
	}
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

// stagingBytes bounds the host memory that seals, and apart from them
// verifies, stage data through at once: a few chunks per core, enough to
// keep every core hashing.
func stagingBytes(chunkSize int64) int64 {
	return int64(max(8, 4*runtime.GOMAXPROCS(0))) * chunkSize
}
