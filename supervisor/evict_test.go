package supervisor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
)

func TestEvictFreesOneDevice(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB, 10 * MiB}, nil)
	a := w.seal(t, 0, "a", MiB)
	w.seal(t, 0, "b", MiB)
	c := w.seal(t, 1, "c", MiB)

	freed, err := w.Evict(context.Background(), 0, "foreign process 4242")
	require.NoError(t, err)
	assert.Len(t, freed, 2)
	assert.Zero(t, w.sims[0].Outstanding())
	assert.Equal(t, 1, w.sims[1].Outstanding())

	violations := w.events(audit.EventPolicyViolation)
	require.Len(t, violations, 1)
	assert.Equal(t, "foreign process 4242", violations[0].Fields["reason"])
	assert.Len(t, w.events(audit.EventVramDeallocated), 2)

	assert.ErrorIs(t, w.Verify(context.Background(), a), messages.ErrUnknownShard)
	require.NoError(t, w.Verify(context.Background(), c), "other devices keep serving")
	w.seal(t, 0, "a", MiB) // the evicted ID is free again
	assert.Nil(t, w.Err())
}

func TestFailStopFromOutside(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	w.seal(t, 0, "a", MiB)
	w.FailStop(fmt.Errorf("device 0: XID 79: %w", messages.ErrDeviceFault))
	w.waitStopped(t)
	assert.ErrorIs(t, w.Err(), messages.ErrDeviceFault)
	assert.Contains(t, w.Err().Error(), "XID 79")
	assert.Zero(t, w.sims[0].Outstanding())
}

func TestEvictTakesAShardAReleaseWaitsFor(t *testing.T) {
	w := newTestWorker(t, []int64{16 * MiB}, nil)
	ctx := context.Background()
	s, l := w.sealLeased(t)
	releaseCtx, stopReleasing := context.WithCancel(ctx)
	released := make(chan error, 1)
	go func() { released <- w.Free(releaseCtx, s) }()
	require.Eventually(t, func() bool {
		shards, err := w.Shards(ctx)
		return err == nil && len(shards) == 0
	}, 10*time.Second, time.Millisecond, "the release is waiting")

	w.evictGivingUp(t, "the eviction waits for the shard too")
	<-l.Revoked()
	assert.ErrorIs(t, l.Err(), messages.ErrEvicted)
	stopReleasing()
	require.ErrorIs(t, <-released, messages.ErrLeaseHeld)
	shards, err := w.Shards(ctx)
	require.NoError(t, err)
	assert.Empty(t, shards, "an evicted shard never comes back when a release gives up")
	l.Release()
	require.Eventually(t, func() bool { return w.sims[0].Outstanding() == 0 }, 10*time.Second, time.Millisecond,
		"freed once the lease ended")
}

// An Evict that stops waiting for a lease leaves the shard to be freed when
// the lease ends: that free is recorded then, like the Evict's own, and
// the shard's ID can be sealed again, without waiting for shutdown.
func TestEvictThatGaveUpRecordsTheLateFree(t *testing.T) {
	w := newTestWorker(t, []int64{16 * MiB}, nil)
	_, l := w.sealLeased(t)
	w.evictGivingUp(t)
	assert.Empty(t, w.events(audit.EventVramDeallocated), "nothing is freed under the lease")

	l.Release()
	require.Eventually(t, func() bool { return len(w.events(audit.EventVramDeallocated)) == 1 }, 10*time.Second, time.Millisecond,
		"the late free is recorded while the worker runs")
	freed := w.events(audit.EventVramDeallocated)[0]
	assert.Equal(t, "leased", freed.Fields["shard_id"])
	assert.Equal(t, "evict", freed.Fields["source"])
	assert.Zero(t, w.sims[0].Outstanding())
	w.seal(t, 0, "leased", 64*KiB) // the ID is free again
	assert.Nil(t, w.Err())
}
