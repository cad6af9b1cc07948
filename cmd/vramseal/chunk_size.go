package main

import (
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/sealer"
)

// defaultChunkSize is the chunk size when --chunk-size is not given: the
// smallest the record allows, 64 KiB, when every device hashes on itself
// (a GPU thread a chunk: a 256 MiB shard is then 4,096 threads where 4 MiB
// chunks would give it 64; see ARCHITECTURE.md), else 4 MiB, which keeps
// host cores' copy-out hashing in few, large reads.
func defaultChunkSize(devices []cuda.Device) int64 {
	for _, d := range devices {
		if h, ok := d.(interface{ HashesOnDevice() bool }); !ok || !h.HashesOnDevice() {
			return sealer.DefaultChunkSize
		}
	}
	if len(devices) == 0 {
		return sealer.DefaultChunkSize
	}
	return sealer.MinChunkSize
}
