package supervisor

import (
	"context"
	"errors"
	"fmt"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// FailStop stops the worker for a fault found outside the runtime, such as
// a GPU health event. cause should wrap a fatal error kind (for example
// messages.ErrDeviceFault); Err returns it once Done closes.
func (r *Runtime) FailStop(cause error) {
	r.fail(cause)
}

// Evict frees every shard on one device, for example because another
// process started using the GPU, and records why: one PolicyViolation record
// with the reason, then a VramDeallocated record per shard. Seals in progress
// on the device fail. The runtime keeps running.
func (r *Runtime) Evict(ctx context.Context, device int, reason string) ([]sealer.Shard, error) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer r.calls.leave()
	if err := sealer.ValidateDevice(device, len(r.gpus)); err != nil {
		return nil, fmt.Errorf("evict: %w", err)
	}
	ctx = context.WithoutCancel(ctx)
	if err := r.record(ctx, audit.Record{Event: audit.EventPolicyViolation, Severity: audit.SeverityWarning, Fields: map[string]any{
		"device": device, "action": "evict", "reason": reason,
	}}); err != nil {
		return nil, fmt.Errorf("evict: %w", err)
	}
	freed, err := r.gpus[device].Drain()
	if messages.IsFatal(err) {
		r.fail(err)
	}
	for _, s := range freed {
		r.ids.drop(s.ID)
	}
	if err := errors.Join(err, r.recordAllDeallocated(ctx, freed, "evict")); err != nil {
		return freed, fmt.Errorf("evict device %d: %w", device, err)
	}
	return freed, nil
}
