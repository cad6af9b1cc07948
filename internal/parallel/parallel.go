// Package parallel runs a loop's iterations on a bounded number of
// goroutines that take the next index in turn: the one work-queue loop the
// module uses wherever work is spread over cores (hashing chunks, sealing
// files, writing audit records). Unlike errgroup with SetLimit it starts one
// goroutine per worker, not per index, so it stays cheap for many small
// items.
package parallel

import (
	"sync"
	"sync/atomic"
)

// Queue hands out the indices 0 to n-1, each once, to any number of
// goroutines. The zero Queue is empty.
type Queue struct {
	next atomic.Int64
	n    int64
}

// NewQueue returns a queue of the indices 0 to n-1.
func NewQueue(n int) *Queue { return &Queue{n: int64(n)} }

// Next takes the next index, or reports false once every index is taken.
func (q *Queue) Next() (int, bool) {
	i := q.next.Add(1) - 1
	if i >= q.n {
		return 0, false
	}
	return int(i), true
}

// Stop makes every later Next report false.
func (q *Queue) Stop() { q.next.Store(q.n) }

// Each runs work(i) for each i from 0 to n-1 on min(workers, n) goroutines,
// each taking the next index in turn, and returns once all of them have;
// with one worker (or one index) it runs them in the caller's goroutine.
// After a work returns an error no more indices are handed out; Each
// returns the first error.
func Each(workers, n int, work func(i int) error) error {
	if workers <= 1 || n <= 1 {
		for i := range n {
			if err := work(i); err != nil {
				return err
			}
		}
		return nil
	}
	q := NewQueue(n)
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i, ok := q.Next(); ok; i, ok = q.Next() {
				if err := work(i); err != nil {
					once.Do(func() { first = err })
					q.Stop()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}
