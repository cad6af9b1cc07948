package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda/cudatest"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

func TestConcurrentSealsGetUniqueIDs(t *testing.T) {
	w := newTestWorker(t, []int64{100 * MiB}, nil)
	results := make(chan sealer.Shard, 10)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			s, err := w.Seal(context.Background(), messages.SealRequest{Data: bytes.NewReader(cudatest.Pattern(3, MiB)), Size: MiB})
			assert.NoError(t, err)
			results <- s
		})
	}
	wg.Wait()
	close(results)
	ids := map[string]bool{}
	for s := range results {
		assert.False(t, ids[s.ID], "duplicate ID %s", s.ID)
		ids[s.ID] = true
	}
	assert.Len(t, ids, 10)
}

func TestConcurrentVerifiesOfOneShard(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	s := w.seal(t, 0, "shared", 2*MiB)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { assert.NoError(t, w.Verify(context.Background(), s)) })
	}
	wg.Wait()
}

// liveShards is the set of shards a test's callers hold, for checking the
// runtime's accounting against.
type liveShards struct {
	mu     sync.Mutex
	shards map[string]sealer.Shard
}

func (l *liveShards) add(s sealer.Shard) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shards[s.ID] = s
}

// take removes and returns a random live shard, if any.
func (l *liveShards) take(rng *rand.Rand) (sealer.Shard, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, s := range l.shards {
		if rng.IntN(2) == 0 || len(l.shards) == 1 {
			delete(l.shards, id)
			return s, true
		}
	}
	return sealer.Shard{}, false
}

func (l *liveShards) bytes() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, s := range l.shards {
		n += s.Size
	}
	return n
}

func TestInterleavedOperationsKeepExactAccounting(t *testing.T) {
	run := 2 * time.Second
	if testing.Short() {
		run = 500 * time.Millisecond
	}
	w := newTestWorker(t, []int64{32 * MiB}, nil)
	live := &liveShards{shards: map[string]sealer.Shard{}}
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := 0; ctx.Err() == nil; i++ {
				switch rng.IntN(4) {
				case 0:
					size := 1 + rng.Int64N(512*KiB)
					s, err := w.Seal(context.Background(), messages.SealRequest{ID: fmt.Sprintf("g%d-%d", g, i), Data: bytes.NewReader(make([]byte, size)), Size: size})
					if err == nil {
						live.add(s)
					} else {
						assert.ErrorIs(t, err, messages.ErrInsufficientVRAM)
					}
				case 1:
					if s, ok := live.take(rng); ok {
						assert.NoError(t, w.Verify(context.Background(), s))
						live.add(s)
					}
				case 2:
					if s, ok := live.take(rng); ok {
						assert.NoError(t, w.Free(context.Background(), s))
					}
				case 3:
					c, err := w.Capacity(context.Background(), 0)
					assert.NoError(t, err)
					assert.GreaterOrEqual(t, c.Total, c.Free)
					assert.LessOrEqual(t, c.Held, c.Total)
				}
			}
		})
	}
	wg.Wait()
	c, err := w.Capacity(context.Background(), 0)
	require.NoError(t, err)
	assert.Equal(t, live.bytes(), c.Held, "held equals the sum of live shard sizes")
	assert.Zero(t, c.Pending)
	assert.Equal(t, c.Total-c.Held, c.Free)
	assert.Len(t, w.sims[0].Allocations(), c.Shards)
	assert.Nil(t, w.Err())
}

func TestSealUntilFull(t *testing.T) {
	w := newTestWorker(t, []int64{20 * MiB}, nil)
	live := &liveShards{shards: map[string]sealer.Shard{}}
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Go(func() {
			for i := 0; ; i++ {
				s, err := w.Seal(context.Background(), messages.SealRequest{ID: fmt.Sprintf("g%d-%d", g, i), Data: bytes.NewReader(cudatest.Pattern(uint64(i), MiB)), Size: MiB})
				if err != nil {
					assert.True(t, errors.Is(err, messages.ErrInsufficientVRAM), "only insufficient VRAM may fail: %v", err)
					return
				}
				live.add(s)
			}
		})
	}
	wg.Wait()
	assert.Len(t, live.shards, 20)
	for _, s := range live.shards {
		assert.NoError(t, w.Verify(context.Background(), s))
	}
}
