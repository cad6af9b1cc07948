package supervisor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOnScrubPassReportsEveryPassAndTheMismatch(t *testing.T) {
	passes := make(chan ScrubPass, 64)
	w := newTestWorker(t, []int64{64 * MiB, 64 * MiB}, func(c *Config) {
		c.VerifyInterval = 20 * time.Millisecond
		c.OnScrubPass = func(p ScrubPass) {
			select {
			case passes <- p:
			default: // a slow test drops reports rather than stall the verifier
			}
		}
	})
	w.seal(t, 0, "a", 256*KiB)
	w.seal(t, 0, "b", 128*KiB)
	w.seal(t, 1, "c", 64*KiB)

	// Every device reports full passes over the shards it holds.
	want := map[int]ScrubPass{0: {Device: 0, Shards: 2, Bytes: 384 * KiB}, 1: {Device: 1, Shards: 1, Bytes: 64 * KiB}}
	seen := map[int]bool{}
	deadline := time.After(30 * time.Second)
	for len(seen) < 2 {
		select {
		case p := <-passes:
			if p.Shards < want[p.Device].Shards {
				continue // a pass that began before the last seal
			}
			assert.Equal(t, want[p.Device].Shards, p.Shards, "device %d", p.Device)
			assert.Equal(t, want[p.Device].Bytes, p.Bytes, "device %d", p.Device)
			assert.Zero(t, p.Mismatches)
			assert.Positive(t, p.Elapsed)
			assert.WithinDuration(t, time.Now(), p.Time, 30*time.Second)
			seen[p.Device] = true
		case <-deadline:
			t.Fatalf("no full pass reported on every device: %v", seen)
		}
	}

	// A flipped bit ends a pass with one mismatch.
	alloc := w.sims[1].Allocations()[0]
	require.NoError(t, w.sims[1].FlipBit(alloc.Handle, 100, 3))
	w.waitStopped(t)
	for {
		select {
		case p := <-passes:
			if p.Mismatches == 0 {
				continue
			}
			assert.Equal(t, 1, p.Device)
			assert.Equal(t, 1, p.Mismatches)
			assert.Zero(t, p.Shards, "the only shard on device 1 did not match")
			return
		case <-time.After(time.Second):
			t.Fatal("the pass that found the flip reported no mismatch")
		}
	}
}
