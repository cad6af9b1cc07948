package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda/cudatest"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

func TestLeaseShowsTheSealedBytes(t *testing.T) {
	w := newTestWorker(t, []int64{16 * MiB}, nil)
	ctx := context.Background()
	s := w.seal(t, 0, "weights", 200*KiB)
	l, err := w.Acquire(ctx, s, Verified())
	require.NoError(t, err)
	defer l.Release()
	view, err := l.View()
	require.NoError(t, err)
	got, err := io.ReadAll(io.NewSectionReader(view, 0, view.Size()))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(cudatest.Pattern(uint64(s.Size), s.Size), got), "the lease shows what was sealed")
	_, err = l.DevicePointer()
	assert.ErrorIs(t, err, messages.ErrInvalidInput, "a Sim has no device addresses")
	assert.Len(t, w.events(audit.EventSealVerified), 1, "the verified acquire is recorded")
	select {
	case <-l.Revoked():
		t.Fatal("revoked while the runtime runs")
	default:
	}
	assert.NoError(t, l.Err())
}

func TestManyLeasesAtOnce(t *testing.T) {
	w := newTestWorker(t, []int64{16 * MiB}, nil)
	ctx := context.Background()
	s := w.seal(t, 0, "shared", 64*KiB)
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			l, err := w.Acquire(ctx, s)
			if assert.NoError(t, err) {
				l.Release()
				l.Release() // idempotent
			}
		})
	}
	wg.Wait()
	require.NoError(t, w.Free(ctx, s), "every lease ended")
	assert.Zero(t, w.sims[0].Outstanding())
}

func TestReleaseWaitsForLeases(t *testing.T) {
	w := newTestWorker(t, []int64{16 * MiB}, nil)
	ctx := context.Background()
	s, l := w.sealLeased(t)

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, w.Free(short, s), messages.ErrLeaseHeld)
	assert.Equal(t, 1, w.sims[0].Outstanding(), "memory under a lease is never freed")
	require.NoError(t, w.Verify(ctx, s), "a release that gave up leaves the shard live")

	released := make(chan error, 1)
	go func() { released <- w.Free(ctx, s) }()
	require.Eventually(t, func() bool {
		shards, err := w.Shards(ctx)
		return err == nil && len(shards) == 0
	}, 10*time.Second, time.Millisecond, "the release is waiting")
	assert.Equal(t, 1, w.sims[0].Outstanding())
	l.Release()
	require.NoError(t, <-released)
	assert.Zero(t, w.sims[0].Outstanding())
}

func TestStopWithAHeldLease(t *testing.T) {
	w := newTestWorker(t, []int64{16 * MiB}, nil)
	ctx := context.Background()
	leased := w.seal(t, 0, "leased", 64*KiB)
	w.seal(t, 0, "free", 64*KiB)
	l, err := w.Acquire(ctx, leased)
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err = w.Stop(short)
	require.ErrorIs(t, err, messages.ErrLeaseHeld)
	assert.Contains(t, err.Error(), "1 lease(s) still held")
	<-l.Revoked()
	assert.ErrorIs(t, l.Err(), messages.ErrStopped)
	require.Eventually(t, func() bool { return w.sims[0].Outstanding() == 1 }, 10*time.Second, time.Millisecond,
		"everything not leased is freed")
	w.requireLeasedBytes(t, l, leased)

	l.Release()
	w.waitStopped(t)
	assert.Zero(t, w.sims[0].Outstanding(), "freed once the lease ended")
	assert.NoError(t, w.Err())
}

func TestFailStopRevokesLeases(t *testing.T) {
	w := newTestWorker(t, []int64{16 * MiB}, nil)
	s := w.seal(t, 0, "leased", 64*KiB)
	l, err := w.Acquire(context.Background(), s)
	require.NoError(t, err)
	w.FailStop(messages.ErrDeviceFault)
	select {
	case <-l.Revoked():
	case <-time.After(10 * time.Second):
		t.Fatal("the fail-stop did not revoke the lease")
	}
	assert.ErrorIs(t, l.Err(), messages.ErrDeviceFault)
	l.Release()
	w.waitStopped(t)
	assert.Zero(t, w.sims[0].Outstanding())
}

func TestEvictRevokesAndWaitsForLeases(t *testing.T) {
	w := newTestWorker(t, []int64{16 * MiB}, nil)
	ctx := context.Background()
	_, l := w.sealLeased(t)
	evicted := make(chan error, 1)
	go func() {
		_, err := w.Evict(ctx, 0, "contention")
		evicted <- err
	}()
	<-l.Revoked()
	assert.ErrorIs(t, l.Err(), messages.ErrEvicted)
	assert.Equal(t, 1, w.sims[0].Outstanding(), "not freed under the lease")
	l.Release()
	require.NoError(t, <-evicted)
	assert.Zero(t, w.sims[0].Outstanding())
	assert.Nil(t, w.Err(), "an eviction stops nothing")
}

func TestAcquireVerifiedOfAFlippedShardFailStops(t *testing.T) {
	w := newTestWorker(t, []int64{16 * MiB}, nil)
	s := w.seal(t, 0, "flipped", 200*KiB)
	require.NoError(t, w.sims[0].FlipBit(w.sims[0].Allocations()[0].Handle, 70*KiB, 1))
	l, err := w.Acquire(context.Background(), s, Verified())
	assert.Nil(t, l)
	var ie *messages.IntegrityError
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, int64(1), ie.Chunk)
	w.waitStopped(t)
	assert.ErrorIs(t, w.Err(), messages.ErrSealVerificationFailed)
	assert.Zero(t, w.sims[0].Outstanding())
}

func TestAcquireRefusesStaleAndAlteredRecords(t *testing.T) {
	w := newTestWorker(t, []int64{16 * MiB}, nil)
	ctx := context.Background()
	old := w.seal(t, 0, "x", 64*KiB)
	require.NoError(t, w.Free(ctx, old))
	w.seal(t, 0, "x", 64*KiB)
	_, err := w.Acquire(ctx, old)
	assert.ErrorIs(t, err, messages.ErrUnknownShard)
	assert.Nil(t, w.Err())
	altered := old
	altered.Size++
	_, err = w.Acquire(ctx, altered)
	assert.ErrorIs(t, err, messages.ErrSealVerificationFailed)
	w.waitStopped(t)
}

func TestStopAfterAnEvictGaveUpFreesNothingLeased(t *testing.T) {
	w := newTestWorker(t, []int64{16 * MiB}, nil)
	ctx := context.Background()
	s, l := w.sealLeased(t)
	w.evictGivingUp(t)

	stopCtx, cancelStop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelStop()
	err := w.Stop(stopCtx)
	require.ErrorIs(t, err, messages.ErrLeaseHeld, "Stop waits for the lease the eviction gave up on")
	assert.Contains(t, err.Error(), "1 lease(s) still held")
	assert.Equal(t, 1, w.sims[0].Outstanding(), "memory under a lease is never freed")
	w.requireLeasedBytes(t, l, s)

	l.Release()
	w.waitStopped(t)
	assert.Zero(t, w.sims[0].Outstanding())
	assert.Len(t, w.events(audit.EventVramDeallocated), 1, "the free is recorded once")
}

func TestFailStopWithALeaseFreesTheOtherDevices(t *testing.T) {
	w := newTestWorker(t, []int64{16 * MiB, 16 * MiB}, nil)
	ctx := context.Background()
	a := w.seal(t, 0, "a", 64*KiB)
	w.seal(t, 1, "b", 64*KiB)
	l, err := w.Acquire(ctx, a)
	require.NoError(t, err)
	w.FailStop(fmt.Errorf("injected: %w", messages.ErrDeviceFault))
	assert.ErrorIs(t, w.Err(), messages.ErrDeviceFault, "Err says why as soon as the fail-stop begins")
	<-l.Revoked()
	require.Eventually(t, func() bool { return w.sims[1].Outstanding() == 0 }, 10*time.Second, time.Millisecond,
		"a lease on device 0 does not keep device 1 from being freed")
	assert.Equal(t, 1, w.sims[0].Outstanding(), "memory under a lease is never freed")
	select {
	case <-w.Done():
		t.Fatal("stopped with a lease held")
	default:
	}
	l.Release()
	w.waitStopped(t)
	assert.Zero(t, w.sims[0].Outstanding())
	assert.ErrorIs(t, w.Err(), messages.ErrDeviceFault)
}

func TestAcquireRacingEvictIsRevoked(t *testing.T) {
	const rounds = 100
	var w *testWorker
	var round atomic.Int64 // the round whose acquire starts an eviction; 0 for none
	evicted := make(chan error, 1)
	var raced sealer.Shard
	w = newTestWorker(t, []int64{16 * MiB}, func(c *Config) {
		c.hooks.acquireLeased = func(int) {
			n := round.Load()
			if n == 0 || !round.CompareAndSwap(n, 0) {
				return
			}
			// The eviction takes the shard after Acquire took its lease
			// and before it registered it for revocation.
			go func() {
				_, err := w.Evict(context.Background(), 0, "contention")
				evicted <- err
			}()
			for {
				if _, err := w.gpus[0].Check(raced); errors.Is(err, messages.ErrUnknownShard) {
					return
				}
				runtime.Gosched()
			}
		}
	})
	ctx := context.Background()
	for n := int64(1); n <= rounds; n++ {
		raced = w.seal(t, 0, "raced", 64*KiB)
		s := raced
		round.Store(n)
		l, err := w.Acquire(ctx, s)
		require.NoError(t, err)
		select {
		case <-l.Revoked():
			assert.ErrorIs(t, l.Err(), messages.ErrEvicted)
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the eviction waits for a lease it never revoked", n)
		}
		l.Release()
		require.NoError(t, <-evicted)
	}
	assert.Zero(t, w.sims[0].Outstanding())
}
