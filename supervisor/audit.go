package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/vramseal/vramseal/audit"
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

// recordAllDeallocated records that every shard in freed was freed, many at
// once, so that a group-committing log makes them durable together.
func (r *Runtime) recordAllDeallocated(ctx context.Context, freed []sealer.Shard, source string) error {
	const writers = 256 // enough to fill a group commit, few enough to stay cheap
	errs := make([]error, len(freed))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(writers, len(freed)) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(freed)); i = next.Add(1) - 1 {
				errs[i] = r.recordDeallocated(ctx, freed[i], source)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
