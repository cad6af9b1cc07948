package main

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/model"
	"github.com/vramseal/vramseal/sealer"
	"github.com/vramseal/vramseal/supervisor"
)

// patternReader yields an endless, cheap, non-zero byte pattern without
// allocating, standing in for a large model file.
type patternReader struct{ offset int }

// pattern is the block patternReader repeats: one byte per offset, a prime
// length so that chunks differ.
var pattern = func() []byte {
	b := make([]byte, 4093)
	for i := range b {
		b[i] = byte(i*31 + 7)
	}
	return b
}()

func (r *patternReader) Read(p []byte) (int, error) {
	for n := 0; n < len(p); {
		c := copy(p[n:], pattern[r.offset:])
		n += c
		r.offset = (r.offset + c) % len(pattern)
	}
	return len(p), nil
}

// TestSealingAHugeShardStagesOnlyAFewChunks seals a 2 GiB shard onto a 3 GiB
// simulated GPU and checks that, apart from the simulated VRAM itself (host
// memory, in a Sim), sealing allocated no more than a few chunks.
func TestSealingAHugeShardStagesOnlyAFewChunks(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("seals 2 GiB: run without -short and without -race")
	}
	const (
		shardSize  = 2 << 30
		chunkSize  = sealer.DefaultChunkSize
		allowance  = 8 * chunkSize // staging buffers, digests and bookkeeping
		simVRAM    = 3 << 30
		shardLabel = "2 GiB generated shard"
	)
	ctx := context.Background()
	rig, err := supervisor.MakeRig(ctx, supervisor.RigConfig{Capacities: []int64{simVRAM}, Config: supervisor.Config{ChunkSize: chunkSize}})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, rig.Stop(ctx)) })
	logger := slog.New(slog.DiscardHandler)
	src := model.NewSource("huge", shardSize, io.LimitReader(&patternReader{}, shardSize))
	src.Name = shardLabel
	start := time.Now()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	shards, err := sealModel(ctx, rig.Runtime, []*model.Source{src}, &progress{logger: logger}, logger)
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	require.Len(t, shards, 1)
	require.Equal(t, int64(shardSize), shards[0].Size)

	allocated := int64(after.TotalAlloc-before.TotalAlloc) - shardSize
	inUse := int64(after.HeapInuse) - int64(before.HeapInuse) - shardSize
	t.Logf("sealed %s in %s", shardLabel, time.Since(start).Round(time.Millisecond))
	t.Logf("sealing %s: allocated %.1f MiB besides the simulated VRAM, heap in use grew %.1f MiB besides it (chunk %d MiB)",
		shardLabel, float64(allocated)/(1<<20), float64(inUse)/(1<<20), chunkSize>>20)
	assert.Less(t, allocated, int64(allowance), "sealing allocates staging buffers, not the shard")
	assert.Less(t, inUse, int64(allowance), "the heap holds staging buffers, not the shard")
}
