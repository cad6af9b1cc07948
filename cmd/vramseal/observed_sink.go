package main

import (
	"context"

	"github.com/vramseal/vramseal/audit"
)

// observedSink is an audit.Sink that passes every record to the durable log
// and then shows it to observers (metrics, readiness): the audit trail is the
// one account of what the worker did, so counting from it keeps the two
// in step. Observers see a record once it is durable, and a critical record
// even if it could not be made so.
type observedSink struct {
	next      audit.Sink
	observers []func(audit.Record)
}

var _ audit.Sink = (*observedSink)(nil)

// Record writes r to the log, then shows it to every observer.
func (s *observedSink) Record(ctx context.Context, r audit.Record) error {
	err := s.next.Record(ctx, r)
	if err == nil || r.Severity == audit.SeverityCritical {
		for _, observe := range s.observers {
			observe(r)
		}
	}
	return err
}

// fieldInt64 reads an integer field of a record as the runtime writes it:
// an int64 or an int.
func fieldInt64(fields map[string]any, key string) (int64, bool) {
	switch v := fields[key].(type) {
	case int64:
		return v, true
	case int:
		return int64(v), true
	}
	return 0, false
}
