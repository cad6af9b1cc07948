package supervisor

import (
	"context"
	"errors"
	"fmt"

	"github.com/vramseal/vramseal/actors"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// Verify proves shard intact before an execution: it checks the record's
// signature, compares the record with the GPU actor's, and re-hashes every
// chunk of device memory on all cores. A record without a signature returns
// ErrNotSealed; any mismatch is recorded as critical and fail-stops the
// worker. A validly signed record of a shard no longer live returns
// ErrUnknownShard.
func (r *Runtime) Verify(ctx context.Context, shard sealer.Shard) error {
	if err := r.enter(); err != nil {
		return err
	}
	defer r.calls.leave()
	ctx, cancel := r.untilStopping(ctx)
	defer cancel()
	view, err := r.checkRecord(ctx, shard)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	err = actors.VerifyShard(ctx, r.gpus[shard.Device], view, r.verifyOptions(nil))
	if messages.IsFatal(err) {
		r.failIntegrity(err)
	}
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	view.LastVerified = r.cfg.Now()
	if err := r.recordVerified(ctx, shard, "verify"); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	r.gpus[shard.Device].MarkVerified(view) // only once its record is durable
	return nil
}

// checkRecord checks a caller's shard record against its signature and the
// GPU actor's record, and returns the actor's view of the shard.
func (r *Runtime) checkRecord(ctx context.Context, shard sealer.Shard) (actors.ShardView, error) {
	err := sealer.CheckSignature(r.cfg.Key, &shard)
	if errors.Is(err, messages.ErrSealVerificationFailed) {
		r.failIntegrity(&actors.IntegrityError{ShardID: shard.ID, Device: shard.Device, Reason: actors.ReasonSignatureMismatch})
	}
	if err != nil {
		return actors.ShardView{}, err
	}
	if err := sealer.ValidateDevice(shard.Device, len(r.gpus)); err != nil {
		return actors.ShardView{}, err
	}
	view, err := r.gpus[shard.Device].Lookup(ctx, shard.ID)
	if err != nil {
		return actors.ShardView{}, err
	}
	if !view.Record.Equal(shard) {
		cause := &actors.IntegrityError{ShardID: shard.ID, Device: shard.Device, Reason: actors.ReasonRecordMismatch}
		r.failIntegrity(cause)
		return actors.ShardView{}, cause
	}
	return view, nil
}

// Release frees a sealed shard's memory and records it. The record must be
// one Seal returned; an altered record is an integrity failure, as in Verify.
// A shard no longer live returns ErrUnknownShard.
func (r *Runtime) Release(ctx context.Context, shard sealer.Shard) error {
	if err := r.enter(); err != nil {
		return err
	}
	defer r.calls.leave()
	if _, err := r.checkRecord(ctx, shard); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	if err := r.gpus[shard.Device].Release(shard.ID); err != nil {
		if messages.IsFatal(err) {
			r.fail(err)
		}
		return fmt.Errorf("release: %w", err)
	}
	r.ids.drop(shard.ID)
	return r.recordDeallocated(context.WithoutCancel(ctx), shard, "release")
}

// Capacity reports one device's memory as the runtime accounts for it.
func (r *Runtime) Capacity(ctx context.Context, device int) (messages.Capacity, error) {
	if err := r.enter(); err != nil {
		return messages.Capacity{}, err
	}
	defer r.calls.leave()
	if err := sealer.ValidateDevice(device, len(r.gpus)); err != nil {
		return messages.Capacity{}, fmt.Errorf("capacity: %w", err)
	}
	return r.gpus[device].Capacity(ctx)
}

// Shards lists every live shard on every device, with when each was last
// fully verified.
func (r *Runtime) Shards(ctx context.Context) ([]messages.ShardStatus, error) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer r.calls.leave()
	var out []messages.ShardStatus
	for _, g := range r.gpus {
		views, err := g.Snapshot(ctx)
		if err != nil {
			return nil, fmt.Errorf("shards: %w", err)
		}
		for _, v := range views {
			out = append(out, messages.ShardStatus{
				ID: v.Record.ID, Device: v.Record.Device, Size: v.Record.Size, Digest: v.Record.Digest,
				ModelRef: v.Record.ModelRef, SealedAt: v.Record.SealedAt, LastVerified: v.LastVerified,
				Tensors: v.Record.Tensors,
			})
		}
	}
	return out, nil
}

// Devices is the number of devices the runtime seals onto.
func (r *Runtime) Devices() int { return len(r.gpus) }
