package supervisor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
)

func TestScrubCatchesAFlippedBitInAnyShard(t *testing.T) {
	const (
		interval  = 50 * time.Millisecond
		shards    = 20
		shardSize = 256 * KiB
		scrubRate = 64 * MiB // bytes per second
	)
	// The bound the design promises, plus slack for a loaded 2-core machine
	// running the race detector: this test catches a scrubber that never
	// looks, not a slow one.
	bound := 2*interval + time.Duration(shards*shardSize*int64(time.Second)/scrubRate)
	const slack = 2 * time.Second

	rng := rand.New(rand.NewPCG(7, 11))
	for round := range 3 {
		t.Run(fmt.Sprint("round ", round), func(t *testing.T) {
			w := newTestWorker(t, []int64{64 * MiB}, func(c *Config) {
				c.VerifyInterval = interval
				c.ScrubRate = scrubRate
			})
			for i := range shards {
				w.seal(t, 0, fmt.Sprintf("shard-%02d", i), shardSize)
			}
			victim := rng.IntN(shards)
			alloc := w.sims[0].Allocations()[victim]
			offset := rng.Int64N(shardSize)
			require.NoError(t, w.sims[0].FlipBit(alloc.Handle, offset, uint(rng.IntN(8))))
			flipped := time.Now()

			w.waitStopped(t)
			latency := time.Since(flipped)
			t.Logf("flip in shard %d detected after %v (design bound %v)", victim, latency, bound)
			assert.Less(t, latency, bound+slack)

			var ie *messages.IntegrityError
			require.ErrorAs(t, w.Err(), &ie)
			assert.Equal(t, fmt.Sprintf("shard-%02d", victim), ie.ShardID)
			assert.Equal(t, offset/(64*KiB), ie.Chunk)
			failed := w.events(audit.EventSealVerificationFailed)
			require.Len(t, failed, 1)
			assert.Equal(t, ie.ShardID, failed[0].Fields["shard_id"])
		})
	}
}

func TestScrubRaisesNoFalseAlarm(t *testing.T) {
	// Parallel: the soak mostly waits, so it runs beside the CPU-bound race hunts.
	t.Parallel()
	soak := 10 * time.Second
	if testing.Short() {
		soak = 2 * time.Second
	}
	w := newTestWorker(t, []int64{64 * MiB, 64 * MiB}, func(c *Config) { c.VerifyInterval = 50 * time.Millisecond })
	for i := range 20 {
		w.seal(t, i%2, fmt.Sprintf("shard-%02d", i), 256*KiB)
	}
	select {
	case <-w.Done():
		t.Fatalf("runtime stopped while scrubbing intact memory: %v", w.Err())
	case <-time.After(soak):
	}
	shards, err := w.Shards(context.Background())
	require.NoError(t, err)
	for _, s := range shards {
		assert.False(t, s.LastVerified.IsZero(), "shard %s was never scrubbed", s.ID)
	}
	scrubbed := 0
	for _, r := range w.events(audit.EventSealVerified) {
		if r.Fields["source"] == "scrub" {
			scrubbed++
		}
	}
	assert.Greater(t, scrubbed, 20*5, "several full passes over every shard")
	assert.Empty(t, w.events(audit.EventSealVerificationFailed))
	assert.NotErrorIs(t, w.Err(), messages.ErrSealVerificationFailed)
}
