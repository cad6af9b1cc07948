package supervisor

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/testwait"
)

func TestGateWaitsForCallsInFlight(t *testing.T) {
	g := newGate()
	require.True(t, g.enter())
	require.True(t, g.enter())
	g.close()
	assert.False(t, g.enter(), "a closed gate admits nobody")

	waited := make(chan struct{})
	go func() {
		g.wait()
		close(waited)
	}()
	g.leave()
	select {
	case <-waited:
		t.Fatal("wait returned with a call still in flight")
	case <-time.After(20 * time.Millisecond):
	}
	g.leave()
	testwait.Receive(t, waited, "return of wait once the last call left")
}

func TestGateClosedWhenIdle(t *testing.T) {
	g := newGate()
	g.close()
	testwait.Receive(t, g.idle, "idle signal of a gate closed with no call in flight")
	assert.False(t, g.enter(), "a closed gate admits nobody")
}

func TestGateUnderContention(t *testing.T) {
	g := newGate()
	var waited, insideAfterWait atomic.Bool
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range 1000 {
				if g.enter() {
					if waited.Load() {
						insideAfterWait.Store(true)
					}
					g.leave()
				}
			}
		})
	}
	g.close()
	g.wait()
	waited.Store(true)
	wg.Wait()
	assert.False(t, insideAfterWait.Load(), "a call was inside after wait returned")
	assert.Equal(t, int64(gateClosed), g.state.Load(), "every admitted call left")
}
