package supervisor

import "sync"

// gate counts the calls in flight and, once closed, admits no more, so that
// shutdown can wait for the calls already inside.
type gate struct {
	mu       sync.Mutex
	closed   bool
	inFlight sync.WaitGroup
}

// enter admits a call, or reports false once the gate is closed.
func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.inFlight.Add(1)
	return true
}

// leave ends a call that enter admitted.
func (g *gate) leave() { g.inFlight.Done() }

// close admits no more calls.
func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
}

// wait waits for the admitted calls to leave; call it after close.
func (g *gate) wait() { g.inFlight.Wait() }
