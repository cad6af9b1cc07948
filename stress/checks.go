package stress

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// checkContinuously checks device d's accounting every CheckInterval until
// stop is closed.
func (g *generation) checkContinuously(ctx context.Context, d int, stop <-chan struct{}) {
	ticker := time.NewTicker(g.h.cfg.CheckInterval)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		g.checkAccounting(ctx, d)
	}
}

// checkAccounting takes one device's capacity while callers work and checks
// it against what they did: held bytes between what must and what may be
// held, and the device's own free memory agreeing with the runtime's count.
func (g *generation) checkAccounting(ctx context.Context, d int) {
	a := &g.acct[d]
	acked, failed, released := a.sealAcked.Load(), a.sealFailed.Load(), a.releaseDone.Load()
	c, err := g.rt.Capacity(ctx, d)
	started, releasing := a.sealStarted.Load(), a.releaseStarted.Load()
	if err != nil || g.fatal.Load() != nil {
		return // stopping; the stop is checked on its own
	}
	g.checks.Add(1)
	lower, upper := acked-releasing, started-failed-released
	var problems []string
	if c.Held < lower || c.Held > upper {
		problems = append(problems, fmt.Sprintf("holds %d bytes, callers account for %d to %d", c.Held, lower, upper))
	}
	problems = append(problems, capacityProblems(c, g.h.cfg.DeviceCapacity)...)
	if len(problems) > 0 && !g.mismatched[d].Swap(true) {
		g.h.violations.addf("runtime %d: device %d accounting: %s", g.n, d, strings.Join(problems, "; "))
	}
}

// capacityProblems checks what holds for any capacity snapshot.
func capacityProblems(c messages.Capacity, capacity int64) []string {
	var problems []string
	if c.Total != capacity {
		problems = append(problems, fmt.Sprintf("total %d bytes, want %d", c.Total, capacity))
	}
	if c.Free > c.Total || c.Free < 0 {
		problems = append(problems, fmt.Sprintf("free %d bytes of %d", c.Free, c.Total))
	}
	if c.Total-c.Free != c.Held {
		problems = append(problems, fmt.Sprintf("device has %d bytes allocated, runtime holds %d", c.Total-c.Free, c.Held))
	}
	if c.Pending < 0 || c.Pending > c.Held {
		problems = append(problems, fmt.Sprintf("pending %d bytes of %d held", c.Pending, c.Held))
	}
	return problems
}

// checkQuiescent checks, with no call in flight, that each device holds
// exactly the live shards, and the runtime lists exactly them. If the
// runtime turns out to be stopping, it gives up: checkStop judges the stop.
func (g *generation) checkQuiescent(ctx context.Context, live []sealer.Shard) {
	held, count := make([]int64, len(g.devices)), make([]int, len(g.devices))
	want := make([]string, 0, len(live))
	for _, s := range live {
		held[s.Device] += s.Size
		count[s.Device]++
		want = append(want, s.ID)
	}
	for d := range g.devices {
		c, err := g.rt.Capacity(ctx, d)
		if errors.Is(err, messages.ErrStopped) {
			return
		}
		if err != nil {
			g.h.violations.addf("runtime %d: device %d capacity at rest: %v", g.n, d, err)
			continue
		}
		problems := capacityProblems(c, g.h.cfg.DeviceCapacity)
		if c.Held != held[d] || c.Pending != 0 || c.Shards != count[d] {
			problems = append(problems, fmt.Sprintf("holds %d bytes (%d pending) in %d shards, callers hold %d bytes in %d shards",
				c.Held, c.Pending, c.Shards, held[d], count[d]))
		}
		if len(problems) > 0 && !g.mismatched[d].Swap(true) {
			g.h.violations.addf("runtime %d: device %d accounting at rest: %s", g.n, d, strings.Join(problems, "; "))
		}
	}
	statuses, err := g.rt.Shards(ctx)
	if errors.Is(err, messages.ErrStopped) {
		return
	}
	if err != nil {
		g.h.violations.addf("runtime %d: shards at rest: %v", g.n, err)
		return
	}
	got := make([]string, 0, len(statuses))
	for _, s := range statuses {
		got = append(got, s.ID)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		g.h.violations.addf("runtime %d: runtime lists %d live shards, callers hold %d", g.n, len(got), len(want))
	}
}

// checkStop checks how the runtime stopped against the fatal fault, if any:
// a fail-stop must follow an injected flip or loss and name it; nothing else
// may stop the runtime.
func (g *generation) checkStop(stopErr error) {
	cause, f := g.rt.Err(), g.fatal.Load()
	switch {
	case f == nil && cause == nil:
		if stopErr != nil {
			g.h.violations.addf("runtime %d: graceful stop failed: %v", g.n, stopErr)
		}
	case f == nil:
		g.h.violations.addf("runtime %d: false alarm: fail-stop with no flip or device loss injected: %v", g.n, cause)
	case cause == nil:
		if !f.missed {
			g.h.violations.addf("runtime %d: %s injected, yet the runtime stopped gracefully", g.n, f)
		}
	case !f.namedBy(cause):
		g.h.violations.addf("runtime %d: %s injected, but the fail-stop names another cause: %v", g.n, f, cause)
	default:
		g.tally.detect(f.kind, 1)
		if f.kind == FaultBitFlip && !f.stoppedAt.IsZero() {
			g.h.detections = append(g.h.detections, f.stoppedAt.Sub(f.at))
		}
	}
}

// namedBy reports whether a fail-stop cause names this fault: for a flip, an
// integrity error for the shard whose chunk holds the flipped byte; for a
// loss, a device fault on that device.
func (f *fatalFault) namedBy(cause error) bool {
	if f.kind == FaultLost {
		return errors.Is(cause, messages.ErrDeviceFault) && strings.Contains(cause.Error(), fmt.Sprintf("device %d", f.device))
	}
	var ie *messages.IntegrityError
	return errors.As(cause, &ie) && ie.ShardID == f.shardID && ie.Device == f.device &&
		ie.Reason == messages.ReasonDigestMismatch && ie.Offset <= f.offset && f.offset < ie.Offset+ie.Length
}

// checkFaults checks that every injected allocation and copy failure reached
// a caller as the error it is.
func (g *generation) checkFaults(sealErrors map[string]int) {
	g.tally.detect(FaultAlloc, sealErrors["allocation_failed"])
	g.tally.detect(FaultCopy, sealErrors["copy_failed"])
	for _, kind := range []string{FaultAlloc, FaultCopy} {
		c := g.tally[kind]
		if in, out := c.injected.Load(), c.detected.Load(); in != out {
			g.h.violations.addf("runtime %d: %d %s faults injected, %d reported to callers", g.n, in, kind, out)
		}
	}
}

// checkAudit matches the audit records against the operations the runtime
// acknowledged: a VramSealed record per seal, a VramDeallocated per release
// and per shard the stop freed, a SealVerified per verify; WorkerStarted and
// WorkerStopped once each, critical after a fail-stop; and a critical
// SealVerificationFailed naming a detected flip.
func (g *generation) checkAudit(ops generationOps) {
	c := g.sink.counts()
	lost := func(format string, args ...any) {
		g.h.violations.addf("runtime %d: lost audit record: "+format, append([]any{g.n}, args...)...)
	}
	for _, id := range ops.acked {
		if c.sealed[id] == 0 {
			lost("acknowledged seal of %q has no %s record", id, audit.EventVramSealed)
		}
	}
	for _, id := range ops.released {
		if c.deallocated[id]["release"] == 0 {
			lost("acknowledged release of %q has no %s record", id, audit.EventVramDeallocated)
		}
	}
	for _, id := range ops.freedByStop {
		if c.deallocated[id]["shutdown"] == 0 {
			lost("shard %q freed by the stop has no %s record", id, audit.EventVramDeallocated)
		}
	}
	for id, n := range ops.verified {
		if c.verified[id] < n {
			lost("%d acknowledged verifies of %q, %d %s records", n, id, c.verified[id], audit.EventSealVerified)
		}
	}
	if c.events[audit.EventWorkerStarted] != 1 || c.events[audit.EventWorkerStopped] != 1 {
		lost("%d %s and %d %s records, want one each", c.events[audit.EventWorkerStarted], audit.EventWorkerStarted,
			c.events[audit.EventWorkerStopped], audit.EventWorkerStopped)
	}
	if cause := g.rt.Err(); cause != nil && !slices.ContainsFunc(c.critical, func(r audit.Record) bool { return r.Event == audit.EventWorkerStopped }) {
		lost("fail-stop (%v) has no critical %s record", cause, audit.EventWorkerStopped)
	}
	if f := g.fatal.Load(); f != nil && f.kind == FaultBitFlip && g.rt.Err() != nil && c.failed[f.shardID] == 0 {
		lost("detected %s has no %s record", f, audit.EventSealVerificationFailed)
	}
	g.h.scrubbed += c.scrubbed
}

// checkDevices checks that the stop left no allocation on any device, and
// that the runtime freed every allocation itself before it closed the device
// (Close frees what is left, which would hide a leak). A lost device cannot
// free, so what it holds is left to Close.
func (g *generation) checkDevices() {
	f := g.fatal.Load()
	for i, sim := range g.sims {
		if n := sim.Outstanding(); n != 0 {
			g.h.violations.addf("runtime %d: device %d has %d allocations outstanding after the stop", g.n, i, n)
		}
		if f != nil && f.kind == FaultLost && f.device == i {
			continue
		}
		if n := g.devices[i].allocationsLeftAtClose(); n != 0 {
			g.h.violations.addf("runtime %d: device %d accounting: the runtime left %d allocations for Close to free", g.n, i, n)
		}
	}
}
