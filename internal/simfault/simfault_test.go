package simfault

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/sealer"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestPlannedFlipIsTheSeedsChoiceAndChangesOneBitOfThatShard(t *testing.T) {
	sims := make([]*cuda.Sim, 2)
	for i := range sims {
		sim, err := cuda.NewSim(cuda.SimConfig{Capacity: 1 << 20, Seed: int64(i + 1)})
		require.NoError(t, err)
		t.Cleanup(func() { sim.Close() })
		sims[i] = sim
	}
	// Shards on alternating devices, two of the same size on device 0,
	// listed in another order than they were allocated, as parallel seals
	// may leave them.
	var shards []sealer.Shard
	memory := map[string]string{} // shard ID -> "device/allocation index", as readAll keys it
	for i, size := range []int64{4096, 8192, 4096, 16384} {
		device := i % 2
		h, err := sims[device].Allocate(size)
		require.NoError(t, err)
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(i*7 + j)
		}
		require.NoError(t, sims[device].Write(h, 0, data))
		sum := sha256.Sum256(data)
		id := fmt.Sprintf("s%d", i)
		shards = append([]sealer.Shard{{ID: id, Device: device, Size: size, ChunkSize: 4096, Digest: hex.EncodeToString(sum[:])}}, shards...)
		memory[id] = fmt.Sprintf("%d/%d", device, len(sims[device].Allocations())-1)
	}

	first := Plan(shards, 42)
	again := Plan(shards, 42)
	assert.Equal(t, first, again, "the same seed makes the same choice")
	choices := map[string]bool{}
	for seed := range uint64(64) {
		choices[Plan(shards, seed).Shard.ID] = true
	}
	assert.Len(t, choices, len(shards), "seeds reach every shard")

	for seed := range uint64(16) {
		p := Plan(shards, seed)
		before := readAll(t, sims)
		require.NoError(t, p.Apply(sims, time.Now()))
		after := readAll(t, sims)
		var changed []string
		for key, b := range before {
			for i := range b {
				if d := b[i] ^ after[key][i]; d != 0 {
					assert.Equal(t, byte(1)<<p.Bit, d)
					assert.Equal(t, p.Offset, int64(i))
					changed = append(changed, key)
				}
			}
		}
		assert.Equal(t, []string{memory[p.Shard.ID]}, changed, "seed %d: one bit of shard %s", seed, p.Shard.ID)
		assert.False(t, p.FlippedAt.IsZero())
		assert.Error(t, p.Apply(sims, time.Now()), "a flipped shard no longer matches its digest")
		restore(t, sims, before)
	}
}

func TestApplyRefusesAShardItCannotFind(t *testing.T) {
	sim, err := cuda.NewSim(cuda.SimConfig{Capacity: 1 << 20})
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	_, err = sim.Allocate(4096)
	require.NoError(t, err)
	other := sha256.Sum256([]byte("not these bytes"))
	f := &Flip{Shard: sealer.Shard{ID: "x", Size: 4096, ChunkSize: 4096, Digest: hex.EncodeToString(other[:])}}
	assert.ErrorContains(t, f.Apply([]*cuda.Sim{sim}, time.Now()), `cannot find the memory of shard "x"`)
	f.Shard.Device = 1
	assert.Error(t, f.Apply([]*cuda.Sim{sim}, time.Now()), "no such simulated device")
	assert.True(t, f.FlippedAt.IsZero())
}

// readAll copies every allocation of every device, keyed "device/index".
func readAll(t *testing.T, sims []*cuda.Sim) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for d, sim := range sims {
		for i, a := range sim.Allocations() {
			b := make([]byte, a.Size)
			require.NoError(t, sim.Read(a.Handle, 0, b))
			out[fmt.Sprintf("%d/%d", d, i)] = b
		}
	}
	return out
}

// restore writes back what readAll read.
func restore(t *testing.T, sims []*cuda.Sim, saved map[string][]byte) {
	t.Helper()
	for d, sim := range sims {
		for i, a := range sim.Allocations() {
			require.NoError(t, sim.Write(a.Handle, 0, saved[fmt.Sprintf("%d/%d", d, i)]))
		}
	}
}

func TestDetectionBoundCoversThePauseAndTwoPasses(t *testing.T) {
	assert.Equal(t, 3*time.Second+2*time.Second+2*4*time.Second, DetectionBound(3*time.Second, 2*time.Second, 1<<20, 4<<20))
	assert.Equal(t, 5*time.Second, DetectionBound(3*time.Second, 2*time.Second, 0, 4<<20), "an unlimited scrub's passes are not counted")
	assert.Zero(t, DetectionBound(3*time.Second, 0, 1<<20, 4<<20), "no scrub, no detection")
}
