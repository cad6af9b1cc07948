package supervisor

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
)

func TestVerifierPanicRestartsIt(t *testing.T) {
	var passes, panics atomic.Int32
	w := newTestWorker(t, []int64{10 * MiB}, func(c *Config) {
		c.VerifyInterval = 20 * time.Millisecond
		c.hooks.beforeScrubPass = func(int) {
			if passes.Add(1) == 2 {
				panics.Add(1)
				panic("injected verifier panic")
			}
		}
	})
	s := w.seal(t, 0, "watched", 128*KiB)
	require.Eventually(t, func() bool { return passes.Load() >= 5 }, 30*time.Second, 5*time.Millisecond,
		"scrubbing goes on after the restart")
	assert.Equal(t, int32(1), panics.Load())
	shards, err := w.Shards(context.Background())
	require.NoError(t, err)
	assert.False(t, shards[0].LastVerified.IsZero())
	require.NoError(t, w.Verify(context.Background(), s))
	assert.Nil(t, w.Err())
}

func TestVerifierPanickingBeyondIntensityFailStops(t *testing.T) {
	var panics atomic.Int32
	w := newTestWorker(t, []int64{10 * MiB}, func(c *Config) {
		c.VerifyInterval = 5 * time.Millisecond
		c.hooks.beforeScrubPass = func(int) {
			panics.Add(1)
			panic("injected verifier panic")
		}
	})
	w.waitStopped(t)
	assert.ErrorIs(t, w.Err(), messages.ErrSoftwareFault, "a panic is a software fault")
	assert.NotErrorIs(t, w.Err(), messages.ErrDeviceFault)
	assert.Equal(t, int32(VerifierMaxRestarts+1), panics.Load(), "restarted within the budget, then escalated")
	records := w.audit.Records()
	last := records[len(records)-1]
	assert.Equal(t, audit.EventWorkerStopped, last.Event)
	assert.Equal(t, audit.SeverityCritical, last.Severity)
}

func TestGPUActorPanicFailStopsAndFreesTheDevice(t *testing.T) {
	var armed atomic.Bool
	w := newTestWorker(t, []int64{10 * MiB, 10 * MiB}, func(c *Config) {
		c.hooks.gpuMessage = func(device int, _ any) {
			if device == 0 && armed.Load() {
				panic("injected GPU actor panic")
			}
		}
	})
	w.seal(t, 0, "a", MiB)
	w.seal(t, 1, "b", MiB)
	_, err := w.Capacity(context.Background(), 0) // the seal's lease has ended
	require.NoError(t, err)
	armed.Store(true)
	_, err = w.Capacity(context.Background(), 0)
	require.ErrorIs(t, err, messages.ErrStopped)
	w.waitStopped(t)
	assert.ErrorIs(t, w.Err(), messages.ErrSoftwareFault, "a panic is a software fault")
	assert.NotErrorIs(t, w.Err(), messages.ErrDeviceFault, "never reported as broken hardware")
	for i, sim := range w.sims {
		assert.Zero(t, sim.Outstanding(), "device %d", i)
	}
	assert.Len(t, w.events(audit.EventVramDeallocated), 2, "the panicked actor's shards are freed and recorded too")
}

func TestGPUActorPanicWithAHeldLeaseFreesNothingLeased(t *testing.T) {
	var armed atomic.Bool
	w := newTestWorker(t, []int64{10 * MiB}, func(c *Config) {
		c.hooks.gpuMessage = func(int, any) {
			if armed.Load() {
				panic("injected GPU actor panic")
			}
		}
	})
	ctx := context.Background()
	leased := w.seal(t, 0, "leased", 64*KiB)
	w.seal(t, 0, "free", 64*KiB)
	l, err := w.Acquire(ctx, leased)
	require.NoError(t, err)
	defer l.Release()
	_, err = w.Capacity(ctx, 0) // the seals' leases have ended
	require.NoError(t, err)
	armed.Store(true)
	_, err = w.Capacity(ctx, 0)
	require.ErrorIs(t, err, messages.ErrStopped)
	w.waitStopped(t)
	assert.ErrorIs(t, w.Err(), messages.ErrSoftwareFault)

	assert.Equal(t, 1, w.sims[0].Outstanding(), "memory under a lease is never freed, not even after a panic")
	w.requireLeasedBytes(t, l, leased)
	freed := w.events(audit.EventVramDeallocated)
	require.Len(t, freed, 1)
	assert.Equal(t, "free", freed[0].Fields["shard_id"])

	err = w.Stop(ctx)
	require.ErrorIs(t, err, messages.ErrLeaseHeld)
	assert.Contains(t, err.Error(), "1 lease(s) still held")
	assert.Contains(t, err.Error(), "1 leased allocation(s) not freed")
	w.stopErr = messages.ErrLeaseHeld
}
