package supervisor

import (
	"context"
	"errors"
	"fmt"

	"github.com/vramseal/vramseal/internal/rehash"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// Verify proves shard intact before an execution: it checks the record's
// signature, compares the record with the GPU actor's, and re-hashes every
// chunk of device memory on all cores. A record without a signature returns
// ErrNotSealed; a signed record that fails its check, and any mismatch, is
// recorded as critical and fail-stops the worker. A validly signed record of
// a shard no longer live (its generation is gone) returns ErrUnknownShard.
func (r *Runtime) Verify(ctx context.Context, shard Shard) error {
	if err := r.enter(); err != nil {
		return err
	}
	defer r.calls.leave()
	ctx, cancel := r.untilStopping(ctx)
	defer cancel()
	live, err := r.checkRecord(shard)
	if err == nil {
		err = r.rehash(ctx, live)
	}
	if err != nil {
		return fmt.Errorf("verify: %w", r.stoppedBy(ctx, err))
	}
	return r.markVerified(ctx, live.Record, "verify")
}

// rehash re-hashes a live shard on all cores, fail-stopping on a mismatch.
func (r *Runtime) rehash(ctx context.Context, s rehash.Shard) error {
	err := rehash.Verify(ctx, r.gpus[s.Record.Device], s, r.rehashOptions(nil))
	if messages.IsFatal(err) {
		r.failIntegrity(err)
	}
	return err
}

// stoppedBy adds to an error that says the runtime stopped the failure that
// stopped it, if a fail-stop did: found meanwhile by the scrub, perhaps, in
// the very shard the caller verifies. An error that is only ctx ending,
// where ctx ended because the runtime stopped, counts as the stop.
func (r *Runtime) stoppedBy(ctx context.Context, err error) error {
	if errors.Is(err, context.Canceled) && errors.Is(context.Cause(ctx), messages.ErrStopped) {
		err = context.Cause(ctx)
	}
	if !errors.Is(err, messages.ErrStopped) {
		return err
	}
	if cause := r.failure(); cause != nil && !errors.Is(err, cause) {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}

// markVerified records that s fully matched, and once that is durable
// notes it in the GPU actor's table.
func (r *Runtime) markVerified(ctx context.Context, s sealer.Shard, source string) error {
	if err := r.recordVerified(ctx, s, source); err != nil {
		return err
	}
	r.gpus[s.Device].MarkVerified(s, r.cfg.Now())
	return nil
}

// checkSigned checks a caller's record against its signature. A signed
// record that fails is an integrity failure, malformed or not; an unsigned
// one is ErrNotSealed (or ErrInvalidInput if also malformed).
func (r *Runtime) checkSigned(shard sealer.Shard) error {
	err := sealer.CheckSignature(r.cfg.Key, &shard)
	if errors.Is(err, messages.ErrSealVerificationFailed) {
		cause := &messages.IntegrityError{ShardID: shard.ID, Device: shard.Device, Reason: messages.ReasonSignatureMismatch}
		r.failIntegrity(cause)
		return cause
	}
	if err != nil {
		return err
	}
	return sealer.ValidateDevice(shard.Device, len(r.gpus))
}

// checkRecord checks a caller's record against its signature and the GPU
// actor's record, and returns the live shard.
func (r *Runtime) checkRecord(shard sealer.Shard) (rehash.Shard, error) {
	if err := r.checkSigned(shard); err != nil {
		return rehash.Shard{}, err
	}
	live, err := r.gpus[shard.Device].Check(shard)
	return live, r.tableRefused(err)
}

// tableRefused fail-stops if a GPU actor found a record that differs from
// the live one its generation names, and returns err.
func (r *Runtime) tableRefused(err error) error {
	var ie *messages.IntegrityError
	if errors.As(err, &ie) {
		r.failIntegrity(err)
	}
	return err
}

// Free frees a sealed shard's memory, once its leases end, and records
// it. The record must be one Seal returned; an altered record is an
// integrity failure, as in Verify. The check and the free are one step of
// the GPU actor, by ID and generation, so a stale record can never free a
// newer shard of the same ID: it returns ErrUnknownShard. If ctx ends while
// leases are held, the shard stays live and the error wraps ErrLeaseHeld.
func (r *Runtime) Free(ctx context.Context, shard Shard) error {
	if err := r.enter(); err != nil {
		return err
	}
	defer r.calls.leave()
	if err := r.checkSigned(shard); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	ctx, cancel := r.untilStopping(ctx)
	defer cancel()
	_, err := r.gpus[shard.Device].Release(ctx, shard)
	var ie *messages.IntegrityError
	switch {
	case errors.As(err, &ie):
		r.failIntegrity(err)
	case messages.IsFatal(err):
		r.fail(err)
	}
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	r.ids.drop(shard.ID)
	return r.recordDeallocated(context.WithoutCancel(ctx), shard, "release")
}

// Capacity reports one device's memory as the runtime accounts for it.
func (r *Runtime) Capacity(ctx context.Context, device int) (Capacity, error) {
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
func (r *Runtime) Shards(ctx context.Context) ([]ShardStatus, error) {
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
				Tensors: sealer.CloneTensors(v.Record.Tensors), // the caller's to change
			})
		}
	}
	return out, nil
}

// Devices is the number of devices the runtime seals onto.
func (r *Runtime) Devices() int { return len(r.gpus) }
