package stress

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// caller is one of the concurrent users of a runtime: it seals shards,
// verifies and releases them, and injects the fatal faults (flips into its
// own shards, lost devices) that the device wrapper cannot.
type caller struct {
	g    *generation
	id   int
	rng  *rand.Rand
	seq  int
	held []sealer.Shard
	res  callerResult
}

// callerResult is what one caller did, for the checks and the report.
type callerResult struct {
	latencies  map[string][]time.Duration
	failed     map[string]int
	sealErrors map[string]int
	// acked, released and verified are the operations the runtime
	// acknowledged, which the audit log must show.
	acked    []string
	released []string
	verified map[string]int
	// held are the shards live when the caller stopped. A shard whose
	// release failed other than by the stop is in none of these lists:
	// after a fatal fault the runtime does not say what became of it.
	held []sealer.Shard
}

func newCaller(g *generation, id int) *caller {
	return &caller{
		g: g, id: id,
		rng: rand.New(rand.NewPCG(uint64(g.h.cfg.Seed), uint64(g.n)<<32|uint64(id))),
		res: callerResult{
			latencies: map[string][]time.Duration{}, failed: map[string]int{},
			sealErrors: map[string]int{}, verified: map[string]int{},
		},
	}
}

// run works until the seal budget is spent, the runtime stops, or a fatal
// fault dooms the runtime: then the callers finish the call they are in and
// stop, so that the budget goes to runtimes that can use it, and the caller
// that injected the fault waits for its detection.
func (c *caller) run(ctx context.Context) callerResult {
	for ctx.Err() == nil && !c.g.stopped() && c.g.fatal.Load() == nil && c.g.h.budget.take() {
		if done := c.sealOne(ctx); done {
			break
		}
		if len(c.held) > 0 && c.rng.IntN(4) != 0 {
			c.verifyOne(ctx)
		}
		for len(c.held) > c.g.h.cfg.HeldPerCaller {
			if !c.releaseOldest(ctx) {
				break
			}
		}
	}
	c.res.held = c.held
	return c.res
}

// sealOne seals one shard, losing its device first or flipping a bit of it
// after at the configured rates. It returns true if the caller is done: the
// runtime is stopping (the seal attempt is handed back to the budget), or
// the caller injected a fatal fault and waited for its detection.
func (c *caller) sealOne(ctx context.Context) bool {
	cfg := c.g.h.cfg
	size, device := cfg.drawSize(c.rng), c.rng.IntN(cfg.Devices)
	c.seq++
	id := fmt.Sprintf("g%d-c%d-s%d", c.g.n, c.id, c.seq)
	var lost *fatalFault
	if c.rollFatal(cfg.Faults.Lost) {
		lost = c.g.injectLoss(device)
	}
	acct := &c.g.acct[device]
	acct.sealStarted.Add(size)
	start := time.Now()
	shard, err := c.g.rt.Seal(ctx, messages.SealRequest{Device: device, ID: id, Data: c.g.h.pool.shard(id, size, c.rng), Size: size})
	elapsed := time.Since(start)
	if errors.Is(err, messages.ErrStopped) && lost == nil {
		acct.sealFailed.Add(size)
		c.g.h.budget.giveBack()
		return true
	}
	if err != nil {
		acct.sealFailed.Add(size)
		c.res.failed[OpSeal]++
		c.sealFailed(id, err, lost != nil)
	} else {
		acct.sealAcked.Add(size)
		c.res.latencies[OpSeal] = append(c.res.latencies[OpSeal], elapsed)
		c.res.acked = append(c.res.acked, id)
		c.held = append(c.held, shard)
		if c.g.h.cfg.hooks.silentFlip && c.g.n == 1 && c.id == 0 && c.seq == 1 {
			c.g.flipSilently(shard)
		}
	}
	if lost != nil {
		c.g.await(ctx, lost)
		return true
	}
	if err == nil && c.rollFatal(cfg.Faults.BitFlip) {
		if f := c.flip(ctx, shard); f != nil {
			c.g.await(ctx, f)
			return true
		}
	}
	return false
}

// sealFailed sorts a failed seal by cause, and reports a cause no injected
// fault explains.
func (c *caller) sealFailed(id string, err error, deviceLost bool) {
	reason := sealErrorReason(err)
	c.res.sealErrors[reason]++
	switch reason {
	case "allocation_failed", "copy_failed", "insufficient_vram", "stopped":
	case "device_fault":
		if !deviceLost {
			c.unexpected("seal %q", id, err)
		}
	default:
		c.unexpected("seal %q", id, err)
	}
}

// sealErrorReason names the cause of a failed seal.
func sealErrorReason(err error) string {
	switch {
	case errors.Is(err, messages.ErrAllocationFailed):
		return "allocation_failed"
	case errors.Is(err, cuda.ErrCopyFailed):
		return "copy_failed"
	case errors.Is(err, messages.ErrInsufficientVRAM):
		return "insufficient_vram"
	case errors.Is(err, messages.ErrStopped):
		return "stopped"
	case errors.Is(err, messages.ErrDeviceFault):
		return "device_fault"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "cancelled"
	default:
		return "other"
	}
}

// flip flips a random bit of shard, one of the caller's own live shards, and
// half the time verifies it at once; otherwise the background scrub must find
// it. It returns nil if another fatal fault already doomed this runtime.
func (c *caller) flip(ctx context.Context, shard sealer.Shard) *fatalFault {
	f := &fatalFault{kind: FaultBitFlip, shardID: shard.ID, device: shard.Device,
		offset: c.rng.Int64N(shard.Size), bit: uint(c.rng.IntN(8))}
	viaVerify := c.rng.IntN(2) == 0
	if !c.g.injectFlip(f) {
		return nil
	}
	if viaVerify {
		err := c.g.rt.Verify(ctx, shard)
		if err == nil {
			c.g.h.violations.addf("runtime %d: verify of shard %q passed with bit %d of byte %d flipped", c.g.n, shard.ID, f.bit, f.offset)
		} else if !errors.Is(err, messages.ErrSealVerificationFailed) && !errors.Is(err, messages.ErrStopped) {
			c.unexpected("verify of flipped shard %q", shard.ID, err)
		}
	}
	return f
}

// verifyOne verifies one of the caller's live shards.
func (c *caller) verifyOne(ctx context.Context) {
	shard := c.held[c.rng.IntN(len(c.held))]
	start := time.Now()
	err := c.g.rt.Verify(ctx, shard)
	elapsed := time.Since(start)
	if errors.Is(err, messages.ErrStopped) {
		return
	}
	if err != nil {
		c.res.failed[OpVerify]++
		c.unexpected("verify %q", shard.ID, err)
		return
	}
	c.res.latencies[OpVerify] = append(c.res.latencies[OpVerify], elapsed)
	c.res.verified[shard.ID]++
}

// releaseOldest releases the caller's oldest live shard, and reports whether
// it could.
func (c *caller) releaseOldest(ctx context.Context) bool {
	shard := c.held[0]
	c.held = c.held[1:]
	if err := c.release(ctx, shard); err != nil {
		if errors.Is(err, messages.ErrStopped) {
			c.held = append(c.held, shard) // still live: the stop frees it
			return false
		}
		c.res.failed[OpRelease]++
		c.unexpected("release %q", shard.ID, err)
		return false
	}
	return true
}

// release releases shard and keeps the accounting and the result.
func (c *caller) release(ctx context.Context, shard sealer.Shard) error {
	acct := &c.g.acct[shard.Device]
	acct.releaseStarted.Add(shard.Size)
	start := time.Now()
	if err := c.g.rt.Free(ctx, shard); err != nil {
		return err
	}
	c.res.latencies[OpRelease] = append(c.res.latencies[OpRelease], time.Since(start))
	acct.releaseDone.Add(shard.Size)
	c.res.released = append(c.res.released, shard.ID)
	c.g.h.released.Store(true)
	return nil
}

// unexpected reports an error no injected fault explains; after a fatal
// fault, or once the run is cancelled, errors are expected.
func (c *caller) unexpected(what, id string, err error) {
	if c.g.fatal.Load() != nil || errors.Is(err, context.Canceled) {
		return
	}
	c.g.h.violations.addf("runtime %d: "+what+": unexpected error: %v", c.g.n, id, err)
}

// roll reports true with probability p.
func (c *caller) roll(p float64) bool { return p > 0 && c.rng.Float64() < p }

// rollFatal rolls for a fatal fault at rate p, which it injects only once a
// caller of the run has released a shard (see harness.released). It rolls
// either way, so that a caller's draws do not depend on when that was.
func (c *caller) rollFatal(p float64) bool { return c.roll(p) && c.g.h.released.Load() }
