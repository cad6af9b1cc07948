package supervisor

import (
	"sync"
	"sync/atomic"
)

// gateClosed marks a closed gate in gate.state, above any count of calls.
const gateClosed = 1 << 62

// gate counts the calls in flight and, once closed, admits no more, so that
// shutdown can wait for the calls already inside. Entering and leaving are
// one atomic add each: thousands of concurrent callers share no lock.
type gate struct {
	state    atomic.Int64 // calls in flight, plus gateClosed once closed
	idleOnce sync.Once
	idle     chan struct{} // closed once the gate is closed and empty
}

func newGate() *gate { return &gate{idle: make(chan struct{})} }

// enter admits a call, or reports false once the gate is closed.
func (g *gate) enter() bool {
	if g.state.Add(1)&gateClosed != 0 {
		g.leave()
		return false
	}
	return true
}

// leave ends a call that enter admitted.
func (g *gate) leave() {
	if g.state.Add(-1) == gateClosed {
		g.idleOnce.Do(func() { close(g.idle) })
	}
}

// close admits no more calls. Call it once.
func (g *gate) close() {
	if g.state.Add(gateClosed) == gateClosed {
		g.idleOnce.Do(func() { close(g.idle) })
	}
}

// wait waits for the admitted calls to leave; call it after close.
func (g *gate) wait() { <-g.idle }
