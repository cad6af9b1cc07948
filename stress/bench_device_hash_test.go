package stress

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
)

func TestDeviceHashingPathsReadOutWhatTheySay(t *testing.T) {
	const shards, size = 3, 9 << 20
	b := &bencher{cfg: BenchConfig{}.withDefaults(), pool: newDataPool(1), cores: 2}
	sim, err := cuda.NewSim(cuda.SimConfig{Capacity: shards * size, Prefault: true})
	require.NoError(t, err)
	defer sim.Close()
	set, err := b.writeShards(sim, shards, size)
	require.NoError(t, err)
	require.Len(t, set[0].sums, 3, "two full chunks and a short one")

	_, err = b.hashPasses(context.Background(), set, inPlaceHash(sim))
	require.NoError(t, err)
	assert.Zero(t, sim.BytesRead(), "hashing in place reads nothing out")
	assert.Equal(t, int64(shards*size*deviceHashPasses), sim.BytesHashed())

	_, err = b.hashPasses(context.Background(), set, copyOutHash(sim))
	require.NoError(t, err)
	assert.Equal(t, int64(shards*size*deviceHashPasses), sim.BytesRead(), "the copy-out path reads every byte")

	require.NoError(t, sim.FlipBit(set[1].handle, 5<<20, 2))
	for name, hash := range map[string]chunkHash{"in place": inPlaceHash(sim), "copy out": copyOutHash(sim)} {
		_, err = b.hashPasses(context.Background(), set, hash)
		assert.ErrorIs(t, err, errDigestChanged, "%s: a flipped bit is noticed", name)
	}
}

func BenchmarkDeviceHashScrub(b *testing.B)  { benchmarkTarget(b, (*bencher).deviceHashScrub) }
func BenchmarkDeviceHashVerify(b *testing.B) { benchmarkTarget(b, (*bencher).deviceHashVerify) }
