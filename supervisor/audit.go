package supervisor

import (
	"context"
	"errors"
	"fmt"

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
