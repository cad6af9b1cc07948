package supervisor

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// MaxEvictReason is the most bytes of an Evict reason that are recorded;
// a longer reason is cut to fit its audit record.
const MaxEvictReason = 512

// FailStop stops the worker for a fault found outside the runtime, such as
// a GPU health event. cause should wrap a fatal error kind (for example
// ErrDeviceFault); Err returns it once Done closes.
func (r *Runtime) FailStop(cause error) {
	r.fail(cause)
}

// Evict frees every shard on one device, for example because another
// process started using the GPU, and records why: one PolicyViolation record
// with the reason, then a VramDeallocated record per shard. It always frees:
// leases on the device are revoked and their memory is freed as each is
// released; seals in progress on the device fail with ErrEvicted, each with
// one failure record. If ctx ends while leases are still held, Evict returns
// what it freed so far and an error wrapping ErrLeaseHeld; the rest is freed
// when their leases end, and recorded then as this Evict's (a later Evict
// or Stop waits for them too). The runtime keeps running.
func (r *Runtime) Evict(ctx context.Context, device int, reason string) ([]Shard, error) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer r.calls.leave()
	if err := sealer.ValidateDevice(device, len(r.gpus)); err != nil {
		return nil, fmt.Errorf("evict: %w", err)
	}
	recErr := r.record(context.WithoutCancel(ctx), audit.Record{Event: audit.EventPolicyViolation, Severity: audit.SeverityWarning, Fields: map[string]any{
		"device": device, "action": "evict", "reason": cutReason(reason),
	}})
	ctx, cancel := r.untilStopping(ctx)
	defer cancel()
	freed, err := r.gpus[device].Drain(ctx, messages.ErrEvicted)
	if messages.IsFatal(err) {
		r.fail(err)
	}
	recErr = errors.Join(recErr, r.recordFreed(context.WithoutCancel(ctx), freed, "evict", "evicted"))
	var shards []sealer.Shard
	for _, f := range freed {
		if !f.Pending {
			shards = append(shards, f.Shard)
		}
	}
	if err := errors.Join(err, recErr); err != nil {
		return shards, fmt.Errorf("evict device %d: %w", device, err)
	}
	return shards, nil
}

// cutReason cuts reason to at most MaxEvictReason bytes, on a rune boundary.
func cutReason(reason string) string {
	if len(reason) <= MaxEvictReason {
		return reason
	}
	cut := MaxEvictReason
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}
