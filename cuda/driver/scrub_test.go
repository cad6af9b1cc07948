package driver_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/cuda/driver"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/supervisor"
)

// TestDriverOnDeviceScrubsAThousandShardsInALaunch seals 1,000 small
// shards through the embedding API and counts the kernel launches of a
// background scrub pass over all of them: the pass must hash every chunk of
// the device in one launch, not in a launch per shard or per few chunks.
func TestDriverOnDeviceScrubsAThousandShardsInALaunch(t *testing.T) {
	d := driver.OpenTestDriver(t)
	require.True(t, d.HashesOnDevice(), "the embedded kernel loads")
	const shards, size = 1000, 20<<10 + 3
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang, not a speed, bound
	defer cancel()
	// A pass's launches are read when the next pass ends: between two
	// reports, the device hashed one whole pass and nothing else.
	launches := make(chan driver.HashStats, 16)
	cfg := supervisor.Config{
		Devices: []cuda.Device{d}, Backend: "cuda", ChunkSize: 64 << 10, VerifyInterval: time.Millisecond,
		OnScrubPass: func(p supervisor.ScrubPass) {
			if p.Shards == shards {
				select {
				case launches <- d.HashStats():
				default:
				}
			}
		},
	}
	rig, err := supervisor.MakeRig(ctx, supervisor.RigConfig{Config: cfg})
	require.NoError(t, err)
	defer func() { assert.NoError(t, rig.Stop(ctx)) }()

	weights := make([]byte, size)
	for i := range shards {
		_, _ = rand.Read(weights) // crypto/rand.Read never fails
		_, err := rig.Seal(ctx, messages.SealRequest{ID: fmt.Sprintf("layer-%d", i), Data: bytes.NewReader(weights), Size: size})
		require.NoError(t, err)
	}
	var first driver.HashStats
	select {
	case first = <-launches:
	case <-ctx.Done():
		t.Fatal("no scrub pass covered all 1,000 shards")
	}
	select {
	case next := <-launches:
		assert.Equal(t, int64(1), next.Launches-first.Launches, "one launch for a pass over %d shards", shards)
		assert.Equal(t, int64(shards), next.Chunks-first.Chunks, "every shard's one chunk hashed in it")
		assert.Equal(t, first.HostFallbacks, next.HostFallbacks, "nothing hashed on the host")
	case <-ctx.Done():
		t.Fatal("no second scrub pass covered all 1,000 shards")
	}
}
