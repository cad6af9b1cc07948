package supervisor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// inPlaceWorker seals three shards, of 64 KiB chunks, onto one Sim that
// scrubs every 10 ms and reports each scrub pass on the returned channel.
func inPlaceWorker(t *testing.T) (*testWorker, []sealer.Shard, <-chan ScrubPass) {
	t.Helper()
	passes := make(chan ScrubPass, 64)
	w := newTestWorker(t, []int64{64 * MiB}, func(c *Config) {
		c.VerifyInterval = 10 * time.Millisecond
		c.OnScrubPass = func(p ScrubPass) {
			select {
			case passes <- p:
			default:
			}
		}
	})
	var shards []sealer.Shard
	for i, size := range []int64{1*MiB + 5, 300 * KiB, 64 * KiB} {
		shards = append(shards, w.seal(t, 0, fmt.Sprintf("shard-%d", i), size))
	}
	return w, shards, passes
}

// handleOf finds the allocation that holds shard s: the only one of its size.
func handleOf(t *testing.T, sim *cuda.Sim, s sealer.Shard) cuda.Handle {
	t.Helper()
	for _, a := range sim.Allocations() {
		if a.Size == s.Size {
			return a.Handle
		}
	}
	t.Fatalf("no allocation of shard %s's %d bytes", s.ID, s.Size)
	return 0
}

// assertNamesTheFlip checks err is the integrity failure of shard s at the
// 64 KiB chunk holding offset, with its byte range.
func assertNamesTheFlip(t *testing.T, err error, s sealer.Shard, offset int64) {
	t.Helper()
	var ie *messages.IntegrityError
	require.ErrorAs(t, err, &ie)
	chunk := offset / (64 * KiB)
	assert.Equal(t, s.ID, ie.ShardID)
	assert.Equal(t, messages.ReasonDigestMismatch, ie.Reason)
	assert.Equal(t, chunk, ie.Chunk)
	assert.Equal(t, chunk*64*KiB, ie.Offset)
	assert.Equal(t, 64*KiB, ie.Length)
	assert.Contains(t, err.Error(), fmt.Sprintf("chunk %d (bytes %d-%d)", chunk, chunk*64*KiB, (chunk+1)*64*KiB-1))
}

func TestScrubAndVerifyReadNoSealedBytesOut(t *testing.T) {
	w, shards, passes := inPlaceWorker(t)
	sim := w.sims[0]
	var total int64
	for _, s := range shards {
		total += s.Size
	}
	read, hashed := sim.BytesRead(), sim.BytesHashed()
	for len(passes) > 0 {
		<-passes
	}
	// The second full pass counted began after the first ended, so after
	// the counters were taken.
	deadline := time.After(30 * time.Second)
	for full := 0; full < 2; {
		select {
		case p := <-passes:
			if p.Shards == len(shards) && p.Bytes == total {
				full++
			}
		case <-deadline:
			t.Fatal("no two full scrub passes in 30 s")
		}
	}
	for _, s := range shards {
		require.NoError(t, w.Verify(context.Background(), s))
	}
	assert.Equal(t, read, sim.BytesRead(), "scrub passes and Verify copied no sealed byte out of the device")
	assert.GreaterOrEqual(t, sim.BytesHashed()-hashed, 2*total, "a full scrub pass and a Verify of each shard hashed every byte in place")
}

func TestVerifyInPlaceNamesAFlip(t *testing.T) {
	w, shards, _ := inPlaceWorker(t)
	sim := w.sims[0]
	read := sim.BytesRead()
	victim := shards[0]
	const offset = 700*KiB + 3
	require.NoError(t, sim.FlipBit(handleOf(t, sim, victim), offset, 5))

	err := w.Verify(context.Background(), victim)
	assertNamesTheFlip(t, err, victim, offset)
	w.waitStopped(t)
	assert.ErrorIs(t, w.Err(), messages.ErrSealVerificationFailed)
	assert.Equal(t, read, sim.BytesRead(), "finding the flip copied nothing out")
}

func TestScrubInPlaceNamesAFlip(t *testing.T) {
	w, shards, _ := inPlaceWorker(t)
	sim := w.sims[0]
	read := sim.BytesRead()
	victim := shards[1]
	const offset = 200*KiB + 77
	require.NoError(t, sim.FlipBit(handleOf(t, sim, victim), offset, 0))

	w.waitStopped(t)
	assertNamesTheFlip(t, w.Err(), victim, offset)
	assert.Equal(t, read, sim.BytesRead(), "finding the flip copied nothing out")
}
