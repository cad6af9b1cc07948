package audit

import (
	"context"
	"sync"
)

// Memory is an in-memory Sink for tests and examples: it keeps every record
// it is given, in order. It is not durable.
type Memory struct {
	mu      sync.Mutex
	records []Record
	fail    error
}

var _ Sink = (*Memory)(nil)

// NewMemory returns an empty in-memory sink.
func NewMemory() *Memory { return &Memory{} }

// Record keeps r, or returns the error set by FailWith.
func (m *Memory) Record(ctx context.Context, r Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.records = append(m.records, r)
	return nil
}

// Records returns a copy of the records kept so far.
func (m *Memory) Records() []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Record(nil), m.records...)
}

// FailWith makes every later Record return err, as a broken disk would;
// nil heals it.
func (m *Memory) FailWith(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}
