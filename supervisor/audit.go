package supervisor

import (
	"context"
	"errors"
	"fmt"

	"github.com/vramseal/vramseal/actors"
	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/internal/parallel"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// errAudit marks an audit record that could not be made durable.
var errAudit = errors.New("audit record not durable")

// record makes rec durable, or says why it could not. A sink that fails
// for any reason but the caller's context or an invalid record has failed
// the worker: nothing it does can be recorded any more, so it fail-stops,
// with a cause wrapping audit.ErrLogFailed.
func (r *Runtime) record(ctx context.Context, rec audit.Record) error {
	sinkErr, err := r.writeRecord(ctx, rec)
	if sinkErr != nil && ctx.Err() == nil && !errors.Is(sinkErr, messages.ErrInvalidInput) {
		if !errors.Is(sinkErr, audit.ErrLogFailed) {
			sinkErr = fmt.Errorf("%w: %w", audit.ErrLogFailed, sinkErr)
		}
		r.fail(sinkErr)
	}
	return err
}

// writeRecord is record without the fail-stop, for a record written on the
// way to a fail-stop with a cause of its own. It returns the sink's error as
// it came, and the error to return to the caller.
func (r *Runtime) writeRecord(ctx context.Context, rec audit.Record) (sinkErr, err error) {
	if rec.Fields == nil {
		rec.Fields = map[string]any{}
	}
	if sinkErr = r.cfg.Audit.Record(ctx, rec); sinkErr == nil {
		return nil, nil
	}
	err = sinkErr
	if ctx.Err() != nil {
		err = context.Cause(ctx) // the caller gave up, or the runtime is stopping
	}
	return sinkErr, fmt.Errorf("%s: %w: %w", rec.Event, errAudit, err)
}

// recordVerified records that every chunk of s matched.
func (r *Runtime) recordVerified(ctx context.Context, s sealer.Shard, source string) error {
	return r.record(ctx, audit.Record{Event: audit.EventSealVerified, Severity: audit.SeverityInfo, Fields: map[string]any{
		"shard_id": s.ID, "device": s.Device, "size": s.Size, "digest": s.Digest, "source": source,
	}})
}

// recordDeallocated records that s was freed.
func (r *Runtime) recordDeallocated(ctx context.Context, s sealer.Shard, source string) error {
	return r.record(ctx, audit.Record{Event: audit.EventVramDeallocated, Severity: audit.SeverityInfo, Fields: map[string]any{
		"shard_id": s.ID, "device": s.Device, "size": s.Size, "source": source,
	}})
}

// recordFreed records what a drain freed, many at once, so that a
// group-committing log makes them durable together: a VramDeallocated
// record per shard, and per seal taken back in progress one
// VramAllocationFailed record giving pendingReason.
func (r *Runtime) recordFreed(ctx context.Context, freed []actors.Freed, source, pendingReason string) error {
	return r.recordEach(len(freed), func(i int) error {
		f := freed[i]
		if f.Pending {
			return r.record(ctx, sealFailedRecord(f.Shard.ID, f.Shard.Device, f.Shard.Size, pendingReason, "the seal was taken back: "+pendingReason))
		}
		r.ids.drop(f.Shard.ID)
		return r.recordDeallocated(ctx, f.Shard, source)
	})
}

// recordScrubbed records that every shard in matched fully matched in a
// scrub pass, and returns those whose record is durable.
func (r *Runtime) recordScrubbed(ctx context.Context, matched []sealer.Shard) []sealer.Shard {
	ok := make([]bool, len(matched))
	err := r.recordEach(len(matched), func(i int) error {
		err := r.recordVerified(ctx, matched[i], "scrub")
		ok[i] = err == nil
		return err
	})
	if err != nil && ctx.Err() == nil {
		r.cfg.Logger.Warn("scrub results not recorded", "err", err)
	}
	var out []sealer.Shard
	for i, s := range matched {
		if ok[i] {
			out = append(out, s)
		}
	}
	return out
}

// sealFailedRecord is the record of a seal that failed after validation.
func sealFailedRecord(id string, device int, size int64, reason, detail string) audit.Record {
	return audit.Record{Event: audit.EventVramAllocationFailed, Severity: audit.SeverityWarning, Fields: map[string]any{
		"shard_id": id, "device": device, "size": size, "reason": reason, "error": detail,
	}}
}

// recordEach runs n record calls on a few hundred writers at once, enough
// to fill a group commit, few enough to stay cheap. It returns the first
// error; after one, no more records are written.
func (r *Runtime) recordEach(n int, record func(i int) error) error {
	const writers = 256
	return parallel.Each(writers, n, record)
}
