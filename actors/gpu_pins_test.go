package actors

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPinsFreeExactlyOnce races leases against a close, many times: the
// allocation is found idle exactly once (by the close, or by the lease that
// ends last after it), and no lease is taken once it is closed.
func TestPinsFreeExactlyOnce(t *testing.T) {
	const rounds, takers = 2000, 4
	for round := range rounds {
		var p pins
		var idle atomic.Int32
		var closed atomic.Bool
		var lateTakes atomic.Int32
		var wg sync.WaitGroup
		for range takers {
			wg.Go(func() {
				for range 8 {
					wasClosed := closed.Load()
					if !p.take() {
						continue
					}
					if wasClosed {
						lateTakes.Add(1)
					}
					if p.drop() {
						idle.Add(1)
					}
				}
			})
		}
		if round%2 == 0 {
			wg.Wait() // some rounds close with no lease held
		}
		if p.close() {
			idle.Add(1)
		}
		closed.Store(true)
		wg.Wait()
		require.Equal(t, int32(1), idle.Load(), "round %d: found idle exactly once", round)
		require.Zero(t, lateTakes.Load(), "round %d: no lease after the close", round)
		require.Zero(t, p.held())
	}
}

func TestPinsReopen(t *testing.T) {
	var p pins
	require.True(t, p.take())
	assert.False(t, p.close(), "a lease is held")
	assert.False(t, p.take(), "closed")
	p.reopen()
	require.True(t, p.take(), "open again")
	assert.Equal(t, int64(2), p.held())
	assert.False(t, p.drop())
	assert.False(t, p.drop(), "the last lease of an open allocation tells no one")
	assert.True(t, p.close(), "none held")
}

func TestHolderSetRevokesLateAdditions(t *testing.T) {
	var h HolderSet[*ReadLease]
	var early, late error
	h.Add(&ReadLease{}, func(cause error) { early = cause })
	cause := assert.AnError
	h.RevokeAll(cause)
	h.Add(&ReadLease{}, func(cause error) { late = cause })
	assert.Equal(t, cause, early)
	assert.Equal(t, cause, late, "registered after the drain: revoked at once")
}
