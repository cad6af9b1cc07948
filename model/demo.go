package model

import (
	cryptorand "crypto/rand"
	"fmt"
	"io"
	"math/rand/v2"
)

// The demo model: shards of random bytes, for showing a worker seal, verify
// and scrub without any weights at hand ("vramseal run" with no files).
const (
	DemoModelRef   = "demo"
	DemoShards     = 3
	DemoShardBytes = 64 << 20
)

// Demo returns the demo model's shards: random bytes, made as they are
// read, never held whole in memory, different every call.
func Demo() []*Source {
	srcs := make([]*Source, DemoShards)
	for i := range srcs {
		var seed [32]byte
		cryptorand.Read(seed[:])
		srcs[i] = &Source{
			ID:       fmt.Sprintf("demo-shard-%d-of-%d", i+1, DemoShards),
			Name:     fmt.Sprintf("demo shard %d of %d", i+1, DemoShards),
			Size:     DemoShardBytes,
			ModelRef: DemoModelRef,
			Index:    i,
			Total:    DemoShards,
			data:     io.LimitReader(rand.NewChaCha8(seed), DemoShardBytes),
		}
	}
	return srcs
}
