package main

import (
	cryptorand "crypto/rand"
	"fmt"
	"io"
	"math/rand/v2"
)

// The demo model, sealed when no model files are given, so that a newcomer
// sees a worker seal, verify and scrub without any weights at hand.
const (
	demoModelRef   = "demo"
	demoShards     = 3
	demoShardBytes = 64 << 20
)

// demoSources returns the demo model's shards: random bytes, made as they
// are read, never held whole in memory.
func demoSources() []*modelSource {
	srcs := make([]*modelSource, demoShards)
	for i := range srcs {
		var seed [32]byte
		cryptorand.Read(seed[:])
		srcs[i] = &modelSource{
			id:       fmt.Sprintf("demo-shard-%d-of-%d", i+1, demoShards),
			name:     fmt.Sprintf("demo shard %d of %d", i+1, demoShards),
			size:     demoShardBytes,
			modelRef: demoModelRef,
			index:    i,
			total:    demoShards,
			data:     io.LimitReader(rand.NewChaCha8(seed), demoShardBytes),
		}
	}
	return srcs
}
