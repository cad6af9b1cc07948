package actors

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// mailboxThroughput is how many messages a mailbox handles before it lets
// other goroutines run: protoactor's default.
const mailboxThroughput = 300

// ownGoroutine is a protoactor dispatcher that runs one actor's mailbox on
// a goroutine kept for the actor's life. protoactor's default starts a new
// goroutine each time an idle mailbox gets a message, and a GPU actor's turn
// (allocate, copy a small shard in, commit) grows each new stack again: 7–8 %
// of a small seal's CPU went to that. The actor calls close in its
// last turn (on actor.Stopped); its owner then waits for the goroutine with
// wait. A mailbox scheduled after close (a message sent to the stopped
// actor, which it drops) runs in the sender's goroutine.
type ownGoroutine struct {
	mu     sync.Mutex
	closed bool
	// work holds the mailbox's next run. protoactor schedules a mailbox
	// only as it turns it from idle to running, and turns it idle only at
	// the end of a run (defaultMailbox.schedule, processMessages), so at
	// most one run waits here while another finishes, and Schedule's send
	// never blocks.
	work chan func()
	done chan struct{}
}

var _ actor.Dispatcher = (*ownGoroutine)(nil)

// startOwnGoroutine starts the goroutine.
func startOwnGoroutine() *ownGoroutine {
	d := &ownGoroutine{work: make(chan func(), 1), done: make(chan struct{})}
	go func() {
		defer close(d.done)
		for run := range d.work {
			run()
		}
	}()
	return d
}

// Schedule runs fn on the goroutine, or in the caller's once closed.
func (d *ownGoroutine) Schedule(fn func()) {
	d.mu.Lock()
	closed := d.closed
	if !closed {
		d.work <- fn
	}
	d.mu.Unlock()
	if closed {
		fn()
	}
}

// Throughput is how many messages the mailbox handles in one go.
func (d *ownGoroutine) Throughput() int { return mailboxThroughput }

// close lets the goroutine end once the run in progress returns. It may be
// called more than once.
func (d *ownGoroutine) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed = true
		close(d.work)
	}
}

// wait waits until the goroutine has ended; close must have been called.
func (d *ownGoroutine) wait() { <-d.done }
