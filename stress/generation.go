package stress

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/sealer"
	"github.com/vramseal/vramseal/supervisor"
)

// readRetries is the read retry limit the harness configures; injected read
// bursts stay within it.
const readRetries = supervisor.DefaultReadRetries

// generation is one runtime's life, from Start to its stop, graceful or
// fail-stop, with the fresh simulated devices and audit sink it ran on.
type generation struct {
	h       *harness
	n       int
	rt      *supervisor.Runtime
	sims    []*cuda.Sim
	devices []*faultyDevice
	sink    *countingSink
	tally   faultTally
	acct    []deviceAccount
	// fatal is the one fatal fault injected into this runtime, if any.
	fatal atomic.Pointer[fatalFault]
	// checks counts accounting snapshots checked; mismatched marks devices
	// already reported, so one leak is one violation, not one per check.
	checks     atomic.Int64
	mismatched []atomic.Bool
}

// deviceAccount is what callers did on one device, as monotone byte counts.
// Each count is raised on the safe side of its call (started and release
// started before it, the others after it returns), so the runtime's holding
// lies within bounds taken from these counts before and after a snapshot.
type deviceAccount struct {
	sealStarted, sealFailed, sealAcked, releaseStarted, releaseDone atomic.Int64
}

// fatalFault is a flip or a device loss, injected once per runtime.
type fatalFault struct {
	kind    string
	shardID string
	device  int
	offset  int64
	bit     uint
	at      time.Time
	// stoppedAt and missed are set by the caller that injected it, once
	// it has waited for the runtime's stop.
	stoppedAt time.Time
	missed    bool
}

// startGeneration starts runtime n over fresh simulated devices.
func (h *harness) startGeneration(ctx context.Context, n int) (*generation, error) {
	cfg := h.cfg
	g := &generation{
		h: h, n: n,
		sink:       newCountingSink(cfg.hooks.dropRecord),
		tally:      newFaultTally(),
		acct:       make([]deviceAccount, cfg.Devices),
		mismatched: make([]atomic.Bool, cfg.Devices),
	}
	base := uint64(cfg.Seed)*1_000_003 + uint64(n)*uint64(cfg.Devices)
	g.devices = make([]*faultyDevice, cfg.Devices)
	rig, err := supervisor.MakeRig(ctx, supervisor.RigConfig{
		Capacities: slices.Repeat([]int64{cfg.DeviceCapacity}, cfg.Devices),
		Name:       fmt.Sprintf("stress-%d", n),
		Seed:       int64(base) - 1,
		Wrap: func(i int, sim *cuda.Sim) cuda.Device {
			g.devices[i] = newFaultyDevice(sim, i, cfg.Faults, readRetries, base+uint64(i), g.tally, cfg.hooks.skipFree)
			return g.devices[i]
		},
		Config: supervisor.Config{
			Key: h.key, WorkerID: fmt.Sprintf("stress-%d", n),
			ChunkSize: cfg.ChunkSize, VerifyInterval: cfg.VerifyInterval, ScrubRate: cfg.ScrubRate,
			ReadRetries: readRetries, Audit: g.sink, Logger: cfg.Logger,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("stress: start runtime %d: %w", n, err)
	}
	g.rt, g.sims = rig.Runtime, rig.Sims
	return g, nil
}

// stopped reports whether the runtime has stopped.
func (g *generation) stopped() bool {
	select {
	case <-g.rt.Done():
		return true
	default:
		return false
	}
}

// injectLoss loses device, unless another fatal fault doomed this runtime
// first. It returns the fault, or nil.
func (g *generation) injectLoss(device int) *fatalFault {
	f := &fatalFault{kind: FaultLost, device: device, at: time.Now()}
	if !g.fatal.CompareAndSwap(nil, f) {
		return nil
	}
	g.devices[device].lose()
	g.tally.inject(FaultLost)
	return f
}

// injectFlip flips f's bit, unless another fatal fault doomed this runtime
// first. It reports whether it did.
func (g *generation) injectFlip(f *fatalFault) bool {
	f.at = time.Now()
	if !g.fatal.CompareAndSwap(nil, f) {
		return false
	}
	dev := g.devices[f.device]
	if err := dev.flip(f.shardID, f.offset, f.bit); err != nil {
		g.h.violations.addf("runtime %d: could not flip a bit of live shard %q: %v", g.n, f.shardID, err)
		return true
	}
	g.tally.inject(FaultBitFlip)
	if g.h.cfg.hooks.undoneFlip && g.n == 1 {
		dev.flip(f.shardID, f.offset, f.bit)
	}
	return true
}

// flipSilently flips a bit of shard without telling the checker: a test
// hook, so the checker must call the stop that follows a false alarm.
func (g *generation) flipSilently(shard sealer.Shard) {
	g.devices[shard.Device].flip(shard.ID, 0, 0)
}

// await waits for the runtime to stop after f, for the detection timeout at
// most.
func (g *generation) await(ctx context.Context, f *fatalFault) {
	timer := time.NewTimer(g.h.cfg.DetectionTimeout)
	defer timer.Stop()
	select {
	case <-g.rt.Done():
		f.stoppedAt = time.Now()
	case <-timer.C:
		f.missed = true
		g.h.violations.addf("runtime %d: %s not detected within %v", g.n, f, g.h.cfg.DetectionTimeout)
	case <-ctx.Done():
	}
}

// String describes the fault.
func (f *fatalFault) String() string {
	if f.kind == FaultLost {
		return fmt.Sprintf("loss of device %d", f.device)
	}
	return fmt.Sprintf("flip of bit %d of byte %d of shard %q on device %d", f.bit, f.offset, f.shardID, f.device)
}

// run lets the callers work until the budget is spent or the runtime stops,
// then stops the runtime and checks what must hold after a stop.
func (g *generation) run(ctx context.Context) []callerResult {
	stopCheckers := make(chan struct{})
	var checkers sync.WaitGroup
	for d := range g.devices {
		checkers.Go(func() { g.checkContinuously(ctx, d, stopCheckers) })
	}

	results := make([]callerResult, g.h.cfg.Concurrency)
	var callers sync.WaitGroup
	for i := range results {
		callers.Go(func() { results[i] = newCaller(g, i).run(ctx) })
	}
	callers.Wait()
	close(stopCheckers)
	checkers.Wait()
	return results
}
