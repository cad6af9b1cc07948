package stress

import (
	"context"
	"sync"

	"github.com/vramseal/vramseal/audit"
)

// countingSink is the audit sink of one runtime: it keeps, per shard, what
// was recorded about it, so the checker can match records against the
// operations the runtime acknowledged. It keeps counts, not records, so it
// stays small over long runs.
type countingSink struct {
	// drop is a test hook: when it says so, a record is acknowledged and
	// not kept.
	drop func(audit.Record) bool

	mu          sync.Mutex
	sealed      map[string]int
	verified    map[string]int // source verify
	scrubbed    int            // SealVerified, source scrub
	deallocated map[string]map[string]int
	failed      map[string]int // SealVerificationFailed, by shard
	events      map[string]int
	critical    []audit.Record
}

var _ audit.Sink = (*countingSink)(nil)

func newCountingSink(drop func(audit.Record) bool) *countingSink {
	return &countingSink{
		drop:        drop,
		sealed:      map[string]int{},
		verified:    map[string]int{},
		deallocated: map[string]map[string]int{},
		failed:      map[string]int{},
		events:      map[string]int{},
	}
}

// Record counts r.
func (s *countingSink) Record(ctx context.Context, r audit.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.drop != nil && s.drop(r) {
		return nil
	}
	id, _ := r.Fields["shard_id"].(string)
	source, _ := r.Fields["source"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events[r.Event]++
	if r.Severity == audit.SeverityCritical {
		s.critical = append(s.critical, r)
	}
	switch r.Event {
	case audit.EventVramSealed:
		s.sealed[id]++
	case audit.EventSealVerified:
		if source == "scrub" {
			s.scrubbed++
		} else {
			s.verified[id]++
		}
	case audit.EventVramDeallocated:
		if s.deallocated[id] == nil {
			s.deallocated[id] = map[string]int{}
		}
		s.deallocated[id][source]++
	case audit.EventSealVerificationFailed:
		s.failed[id]++
	}
	return nil
}

// auditCounts is a copy of what a countingSink holds.
type auditCounts struct {
	sealed      map[string]int
	verified    map[string]int
	scrubbed    int
	deallocated map[string]map[string]int
	failed      map[string]int
	events      map[string]int
	critical    []audit.Record
}

// counts returns what has been recorded. Call it once the runtime has
// stopped; the maps are shared, not copied.
func (s *countingSink) counts() auditCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return auditCounts{
		sealed: s.sealed, verified: s.verified, scrubbed: s.scrubbed, deallocated: s.deallocated,
		failed: s.failed, events: s.events, critical: append([]audit.Record(nil), s.critical...),
	}
}
