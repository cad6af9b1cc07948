package gpuhealth

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/sealer"
)

// evictCall is one Evict a fakeEvictTarget received.
type evictCall struct {
	device int
	reason string
}

// fakeEvictTarget records evictions; each waits for a token on release.
type fakeEvictTarget struct {
	started  chan evictCall
	release  chan struct{}
	finished atomic.Int32

	mu    sync.Mutex
	calls []evictCall
}

func newFakeEvictTarget() *fakeEvictTarget {
	return &fakeEvictTarget{started: make(chan evictCall, 16), release: make(chan struct{})}
}

func (f *fakeEvictTarget) Evict(_ context.Context, device int, reason string) ([]sealer.Shard, error) {
	call := evictCall{device, reason}
	f.started <- call
	<-f.release
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
	f.finished.Add(1)
	return nil, nil
}

// nextStarted returns the next eviction to start.
func (f *fakeEvictTarget) nextStarted(t *testing.T) evictCall {
	t.Helper()
	select {
	case c := <-f.started:
		return c
	case <-time.After(testTimeout):
		require.FailNow(t, "no eviction started")
		return evictCall{}
	}
}

func TestEvictorCoalescesRequestsPerDeviceAndStopWaits(t *testing.T) {
	target := newFakeEvictTarget()
	e := startEvictor(target, slog.New(slog.NewTextHandler(io.Discard, nil)))

	e.request(0, "first")
	assert.Equal(t, evictCall{0, "first"}, target.nextStarted(t))
	// While device 0's eviction runs, requests queue without blocking; the
	// later one for a device replaces the earlier.
	e.request(2, "older")
	e.request(1, "only")
	e.request(2, "newer")
	target.release <- struct{}{}
	assert.Equal(t, evictCall{1, "only"}, target.nextStarted(t), "devices in order")
	target.release <- struct{}{}
	assert.Equal(t, evictCall{2, "newer"}, target.nextStarted(t))

	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		e.stop()
	}()
	target.release <- struct{}{}
	<-stopped
	assert.EqualValues(t, 3, target.finished.Load(), "stop waited for the eviction under way")
	assert.Equal(t, []evictCall{{0, "first"}, {1, "only"}, {2, "newer"}}, target.calls)
	e.stop() // a second stop does nothing
}
