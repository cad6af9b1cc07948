package actors

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vramseal/vramseal/internal/testwait"
)

// TestOwnGoroutineRunsInOrderThenInTheCallerOnceClosed pins the mailbox
// dispatcher's contract: runs happen one after another on its goroutine,
// the goroutine ends once closed, and a run scheduled after that happens
// before Schedule returns.
func TestOwnGoroutineRunsInOrderThenInTheCallerOnceClosed(t *testing.T) {
	d := startOwnGoroutine()
	ran := make(chan int, 3)
	for i := range 3 {
		d.Schedule(func() { ran <- i })
		assert.Equal(t, i, testwait.Receive(t, ran, "a scheduled run"))
	}
	d.close()
	d.close() // a second close does nothing
	ended := make(chan struct{})
	go func() {
		d.wait()
		close(ended)
	}()
	testwait.Receive(t, ended, "the dispatcher's goroutine ending once closed")

	inline := false
	d.Schedule(func() { inline = true })
	assert.True(t, inline, "a run scheduled after close happens in the caller")
}
