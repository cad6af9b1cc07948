package actors

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

func randomBytes(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func verifyOpts(workers int) VerifyOptions {
	return VerifyOptions{Workers: workers, ReadRetries: 2, Buffers: NewBufferPool(chunkSize, 8*chunkSize)}
}

func TestVerifyShardPassesIntactMemory(t *testing.T) {
	f := newGPUFixture(t, 4<<20, 0)
	v := f.seal(t, "intact", randomBytes(5*chunkSize+17))
	for _, workers := range []int{1, 2, 8} {
		assert.NoError(t, VerifyShard(context.Background(), f.gpu, v, verifyOpts(workers)))
	}
	limited := verifyOpts(2)
	limited.Limiter = rate.NewLimiter(rate.Limit(64<<20), chunkSize)
	assert.NoError(t, VerifyShard(context.Background(), f.gpu, v, limited))
}

func TestVerifyShardNamesTheCorruptedChunk(t *testing.T) {
	for _, offset := range []int64{0, chunkSize - 1, 3*chunkSize + 5, 5*chunkSize + 16} {
		f := newGPUFixture(t, 4<<20, 0)
		v := f.seal(t, "victim", randomBytes(5*chunkSize+17))
		require.NoError(t, f.sim.FlipBit(f.sim.Allocations()[0].Handle, offset, 7))
		err := VerifyShard(context.Background(), f.gpu, v, verifyOpts(2))
		var ie *IntegrityError
		require.ErrorAs(t, err, &ie, "offset %d", offset)
		assert.ErrorIs(t, err, messages.ErrSealVerificationFailed)
		chunk := offset / chunkSize
		assert.Equal(t, chunk, ie.Chunk)
		assert.Equal(t, chunk*chunkSize, ie.Offset)
		assert.Equal(t, min(int64(chunkSize), v.Record.Size-chunk*chunkSize), ie.Length)
		assert.NotEqual(t, ie.Expected, ie.Actual)
		assert.Equal(t, ReasonDigestMismatch, ie.Reason)
	}
}

func TestVerifyShardChecksTheChunkTable(t *testing.T) {
	f := newGPUFixture(t, 4<<20, 0)
	v := f.seal(t, "table", randomBytes(3*chunkSize))
	v.Chunks = append([]sealer.ChunkDigest(nil), v.Chunks...)
	v.Chunks[1][0] ^= 1
	var ie *IntegrityError
	require.ErrorAs(t, VerifyShard(context.Background(), f.gpu, v, verifyOpts(2)), &ie)
	assert.Equal(t, ReasonChunkRootMismatch, ie.Reason)
}

func TestVerifyShardRetriesReads(t *testing.T) {
	f := newGPUFixture(t, 4<<20, 0)
	v := f.seal(t, "flaky", randomBytes(chunkSize))
	f.sim.FailReads(2)
	assert.NoError(t, VerifyShard(context.Background(), f.gpu, v, verifyOpts(1)))
	f.sim.FailReads(3)
	err := VerifyShard(context.Background(), f.gpu, v, verifyOpts(1))
	assert.ErrorIs(t, err, messages.ErrDeviceFault)
	assert.True(t, messages.IsFatal(err))
}

func TestVerifyShardStopsWithItsContext(t *testing.T) {
	f := newGPUFixture(t, 4<<20, 0)
	v := f.seal(t, "slow", randomBytes(4*chunkSize))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, VerifyShard(ctx, f.gpu, v, verifyOpts(2)), context.Canceled)
}

func TestVerifyShardsPoolsChunksAcrossShards(t *testing.T) {
	f := newGPUFixture(t, 8<<20, 0)
	var views []ShardView
	for i, size := range []int{100, chunkSize, 3*chunkSize + 1, 7} {
		views = append(views, f.seal(t, fmt.Sprint("s", i), randomBytes(size)))
	}
	require.NoError(t, f.gpu.Release("s2"))
	var mu sync.Mutex
	matched := map[string]int{}
	err := VerifyShards(context.Background(), f.gpu, views, verifyOpts(3), func(v ShardView) {
		mu.Lock()
		defer mu.Unlock()
		matched[v.Record.ID]++
	})
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"s0": 1, "s1": 1, "s3": 1}, matched, "each live shard once; the released one skipped")

	require.NoError(t, f.sim.FlipBit(f.sim.Allocations()[2].Handle, 3, 0))
	var ie *IntegrityError
	require.ErrorAs(t, VerifyShards(context.Background(), f.gpu, views, verifyOpts(3), func(ShardView) {}), &ie)
	assert.Equal(t, "s3", ie.ShardID)
}
