package audit

import (
	"context"
	"fmt"
	"sync"

	"github.com/vramseal/vramseal/messages"
)

// batch is the outcome shared by the records the writer takes together:
// one channel, closed once, wakes every caller waiting on the batch.
type batch struct {
	done chan struct{} // closed when err and failedFrom are set
	err  error
	// failedFrom is the index of the first record err applies to; the ones
	// before it are durable. Only SyncEach fails part of a batch.
	failedFrom int
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// result is what the record at index i of b learns.
func (b *batch) result(i int) error {
	if i < b.failedFrom {
		return nil
	}
	return b.err
}

// queue holds the records accepted and not yet taken by the writer, at
// most limit of them. Callers append under its lock; the writer takes all
// of them at once, leaving an empty queue and a new batch for the records
// that arrive while it writes.
type queue struct {
	ready chan struct{} // one signal: records arrived in an empty queue, the queue filled, or it closed

	mu     sync.Mutex
	tails  []encodedTail
	open   *batch        // the batch the queued records belong to
	room   chan struct{} // closed when the writer takes a full queue
	limit  int
	closed bool
}

func newQueue(limit int) *queue {
	return &queue{
		ready: make(chan struct{}, 1),
		tails: make([]encodedTail, 0, limit),
		open:  newBatch(),
		room:  make(chan struct{}),
		limit: limit,
	}
}

// put queues t and returns its batch and its index in it. While the queue
// is full it waits for room, for ctx at most. After close it returns
// messages.ErrStopped.
func (q *queue) put(ctx context.Context, t encodedTail) (*batch, int, error) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, 0, fmt.Errorf("audit: log closed: %w", messages.ErrStopped)
		}
		if n := len(q.tails); n < q.limit {
			q.tails = append(q.tails, t)
			b := q.open
			q.mu.Unlock()
			if n == 0 || n+1 == q.limit {
				q.signal()
			}
			return b, n, nil
		}
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}

// signal tells the writer to look at the queue, unless it has been told
// already.
func (q *queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take hands the writer every queued record and their batch, and gives
// the queue spare, an empty slice the writer is done with, to fill next.
// It returns no records if none are queued; closed reports whether the
// queue has been closed, after which nothing more is queued.
func (q *queue) take(spare []encodedTail) (tails []encodedTail, b *batch, closed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.tails) == 0 {
		return nil, nil, q.closed
	}
	if len(q.tails) == q.limit {
		close(q.room)
		q.room = make(chan struct{})
	}
	tails, b = q.tails, q.open
	q.tails, q.open = spare[:0], newBatch()
	return tails, b, q.closed
}

// len is the number of records queued.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.tails)
}

// state says how many records are queued, whether that fills the queue,
// and whether it is closed.
func (q *queue) state() (queued int, full, closed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.tails), len(q.tails) == q.limit, q.closed
}

// close refuses later records and wakes the writer to take the last ones.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}
