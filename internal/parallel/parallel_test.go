package parallel

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestEachRunsEveryIndexOnce(t *testing.T) {
	for _, tc := range []struct{ workers, n int }{{1, 0}, {0, 5}, {4, 1}, {4, 1000}, {64, 3}} {
		counts := make([]atomic.Int32, tc.n)
		var mu sync.Mutex
		running, most := 0, 0
		err := Each(tc.workers, tc.n, func(i int) error {
			mu.Lock()
			running++
			most = max(most, running)
			mu.Unlock()
			counts[i].Add(1)
			mu.Lock()
			running--
			mu.Unlock()
			return nil
		})
		assert.NoError(t, err)
		for i := range counts {
			assert.Equal(t, int32(1), counts[i].Load(), "index %d of %d with %d workers", i, tc.n, tc.workers)
		}
		assert.LessOrEqual(t, most, max(1, tc.workers), "never more goroutines at once than workers")
	}
}

func TestEachStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	var ran atomic.Int32
	err := Each(1, 100, func(i int) error {
		ran.Add(1)
		if i == 10 {
			return boom
		}
		return nil
	})
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, int32(11), ran.Load(), "no index is handed out after the error")
}

func TestQueueHandsOutEachIndexOnceThenStops(t *testing.T) {
	q := NewQueue(3)
	for want := range 3 {
		i, ok := q.Next()
		assert.True(t, ok)
		assert.Equal(t, want, i)
	}
	_, ok := q.Next()
	assert.False(t, ok)
	q = NewQueue(5)
	q.Next()
	q.Stop()
	_, ok = q.Next()
	assert.False(t, ok, "stopped")
	_, ok = (&Queue{}).Next()
	assert.False(t, ok, "the zero Queue is empty")
}
