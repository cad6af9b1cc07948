package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/sealer"
)

// errAudit marks an audit record that could not be made durable.
var errAudit = errors.New("audit record not durable")

// record makes rec durable, or says why it could not.
func (r *Runtime) record(ctx context.Context, rec audit.Record) error {
	if rec.Fields == nil {
		rec.Fields = map[string]any{}
	}
	if err := r.cfg.Audit.Record(ctx, rec); err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx) // the caller gave up, or the runtime is stopping
		}
		return fmt.Errorf("%s: %w: %w", rec.Event, errAudit, err)
	}
	return nil
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
