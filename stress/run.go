package stress

import (
	"context"
	"crypto/rand"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// Goroutine check: after each stop the count must come back to within
// goroutineSlack of what it was before the runtime started, within
// goroutineDeadline.
const (
	goroutineSlack    = 0
	goroutineDeadline = 5 * time.Second
	heapSampleEvery   = 20 * time.Millisecond
)

// harness is one Run: what its runtimes share, and what it has counted.
type harness struct {
	cfg        Config
	key        *sealer.Key
	pool       dataPool
	budget     budget
	violations violations
	// released is set by the run's first acknowledged release: fatal faults
	// wait for it. At high fatal rates and many callers, a runtime is
	// doomed within a few seals, before any caller holds more than
	// HeldPerCaller shards and releases one, so whether a run released
	// anything at all was left to how the scheduler interleaved the callers.
	released atomic.Bool

	// Owned by Run's goroutine.
	latencies  map[string][]time.Duration
	ops        map[string]*OpStats
	sealErrors map[string]int
	faults     map[string]FaultCount
	detections []time.Duration
	scrubbed   int
	checks     int
	runtimes   int
	restarts   int

	// leaked is the test hook's goroutine, which lives until Run returns.
	leaked     sync.WaitGroup
	leakedDone chan struct{}
}

// generationOps are the operations one runtime acknowledged, which its audit
// records must show.
type generationOps struct {
	acked, released, freedByStop []string
	verified                     map[string]int
	sealErrors                   map[string]int
}

// Run starts runtimes over simulated devices and lets cfg.Concurrency callers
// seal, verify and release until cfg.Seals seal attempts are spent, injecting
// faults at cfg.Faults' rates and checking the invariants throughout and after
// every stop. A fail-stop is followed by a fresh runtime. Broken invariants
// are counted in the report, not returned as errors; Run fails only if it
// cannot run (bad config, a runtime that will not start) or ctx ends.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	token := make([]byte, 32)
	rand.Read(token)
	key, err := sealer.DeriveKey(token, "stress")
	if err != nil {
		return Report{}, err
	}
	defer key.Zero()
	h := &harness{
		cfg: cfg, key: key, pool: newDataPool(cfg.Seed),
		latencies: map[string][]time.Duration{}, ops: map[string]*OpStats{},
		sealErrors: map[string]int{}, faults: map[string]FaultCount{},
		leakedDone: make(chan struct{}),
	}
	for _, kind := range opKinds {
		h.ops[kind] = &OpStats{}
	}
	h.budget.left.Store(int64(cfg.Seals))

	var peakHeap uint64
	stopSampler := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() { peakHeap = sampleHeap(stopSampler) })

	start := time.Now()
	failStopped := false
	for n := 1; h.budget.remaining() > 0 && err == nil; n++ {
		if failStopped {
			h.restarts++
		}
		failStopped, err = h.runGeneration(ctx, n)
	}
	elapsed := time.Since(start)

	close(stopSampler)
	sampler.Wait()
	close(h.leakedDone)
	h.leaked.Wait()
	return h.report(elapsed, peakHeap), err
}

// runGeneration runs one runtime to its stop and checks it. It reports
// whether the runtime fail-stopped.
func (h *harness) runGeneration(ctx context.Context, n int) (bool, error) {
	baseline := runtime.NumGoroutine()
	g, err := h.startGeneration(ctx, n)
	if err != nil {
		return false, err
	}
	h.runtimes++
	if h.cfg.hooks.leakGoroutine && n == 1 {
		h.leaked.Go(func() { <-h.leakedDone })
	}
	ops, live := h.merge(g.run(ctx))
	if !g.stopped() && ctx.Err() == nil {
		g.checkQuiescent(ctx, live)
		live = h.releaseHalf(ctx, g, live, &ops)
		g.checkQuiescent(ctx, live)
	}
	for _, s := range live {
		ops.freedByStop = append(ops.freedByStop, s.ID)
	}
	if h.cfg.hooks.skipFreeAtStop {
		var skipped atomic.Bool
		g.devices[0].setSkipFree(func(int) bool { return !skipped.Swap(true) })
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	stopErr := g.rt.Stop(stopCtx)
	g.checkStop(stopErr)
	g.checkFaults(ops.sealErrors)
	g.checkAudit(ops)
	g.checkDevices()
	h.checkGoroutines(n, baseline)
	for kind, c := range g.tally.counts() {
		total := h.faults[kind]
		total.Injected += c.Injected
		total.Detected += c.Detected
		h.faults[kind] = total
	}
	h.checks += int(g.checks.Load())
	return g.rt.Err() != nil, ctx.Err()
}

// merge adds the callers' results to the run's totals and returns the
// runtime's acknowledged operations and the shards still live.
func (h *harness) merge(results []callerResult) (generationOps, []sealer.Shard) {
	ops := generationOps{verified: map[string]int{}, sealErrors: map[string]int{}}
	var live []sealer.Shard
	for _, r := range results {
		for kind, ds := range r.latencies {
			h.latencies[kind] = append(h.latencies[kind], ds...)
			h.ops[kind].OK += len(ds)
		}
		for kind, n := range r.failed {
			h.ops[kind].Failed += n
		}
		for reason, n := range r.sealErrors {
			h.sealErrors[reason] += n
			ops.sealErrors[reason] += n
		}
		ops.acked = append(ops.acked, r.acked...)
		ops.released = append(ops.released, r.released...)
		for id, n := range r.verified {
			ops.verified[id] += n
		}
		live = append(live, r.held...)
	}
	return ops, live
}

// releaseHalf releases every other live shard of a runtime at rest, so that
// both releases and the stop free shards, and returns the rest. If the
// runtime turns out to be stopping, the stop frees the rest.
func (h *harness) releaseHalf(ctx context.Context, g *generation, live []sealer.Shard, ops *generationOps) []sealer.Shard {
	var rest []sealer.Shard
	for i, s := range live {
		if i%2 == 1 {
			rest = append(rest, s)
			continue
		}
		err := g.rt.Free(ctx, s)
		switch {
		case errors.Is(err, messages.ErrStopped):
			return append(rest, live[i:]...)
		case err != nil:
			if g.fatal.Load() == nil {
				h.violations.addf("runtime %d: release %q at rest: %v", g.n, s.ID, err)
			}
		default:
			ops.released = append(ops.released, s.ID)
		}
	}
	return rest
}

// checkGoroutines waits for the goroutine count to come back to within
// goroutineSlack of baseline, and reports a leak if it does not in time.
func (h *harness) checkGoroutines(n, baseline int) {
	deadline := time.Now().Add(orDefault(h.cfg.hooks.goroutineDeadline, goroutineDeadline))
	ticker := time.NewTicker(time.Millisecond)
	defer ticker.Stop()
	for {
		got := runtime.NumGoroutine()
		if got <= baseline+goroutineSlack {
			return
		}
		if time.Now().After(deadline) {
			h.violations.addf("runtime %d: goroutine leak: %d goroutines after the stop, %d before it started", n, got, baseline)
			return
		}
		<-ticker.C
	}
}

// sampleHeap samples the live heap until stop is closed and returns its peak.
func sampleHeap(stop <-chan struct{}) uint64 {
	ticker := time.NewTicker(heapSampleEvery)
	defer ticker.Stop()
	var peak uint64
	var ms runtime.MemStats
	for {
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
		select {
		case <-stop:
			return peak
		case <-ticker.C:
		}
	}
}

// report builds the run's report.
func (h *harness) report(elapsed time.Duration, peakHeap uint64) Report {
	cfg := h.cfg
	r := Report{
		Devices: cfg.Devices, Seals: cfg.Seals, Concurrency: cfg.Concurrency, Seed: cfg.Seed, FaultRates: cfg.Faults,
		Elapsed: elapsed, Runtimes: h.runtimes, Restarts: h.restarts,
		Ops: map[string]OpStats{}, SealErrors: h.sealErrors, Faults: map[string]FaultCount{},
		DetectionLatency: summarize(h.detections), ScrubVerified: h.scrubbed, AccountingChecks: h.checks,
		PeakHeapBytes: peakHeap,
	}
	for _, kind := range opKinds {
		o := *h.ops[kind]
		o.Latency = summarize(h.latencies[kind])
		if elapsed > 0 {
			o.PerSecond = float64(o.OK) / elapsed.Seconds()
		}
		r.Ops[kind] = o
	}
	for _, kind := range faultKinds {
		r.Faults[kind] = h.faults[kind]
	}
	r.Violations, r.ViolationSamples = h.violations.snapshot()
	if r.ViolationSamples == nil {
		r.ViolationSamples = []string{}
	}
	return r
}
