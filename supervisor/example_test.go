package supervisor_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/supervisor"
)

// Example seals a shard onto a simulated GPU, verifies it before use,
// releases it and stops the runtime.
func Example() {
	ctx := context.Background()
	keys, err := supervisor.DeriveKeys([]byte("example-token-0123456789"), "worker-1")
	if err != nil {
		panic(err)
	}
	gpu, err := cuda.NewSim(cuda.SimConfig{Capacity: 64 << 20})
	if err != nil {
		panic(err)
	}
	log := audit.NewMemory()
	rt, err := supervisor.Start(ctx, supervisor.Config{
		Devices:  []cuda.Device{gpu},
		Key:      keys.Seal,
		WorkerID: "worker-1",
		Audit:    log,
	})
	if err != nil {
		panic(err)
	}

	weights := bytes.Repeat([]byte{0x42}, 1<<20)
	shard, err := rt.Seal(ctx, supervisor.SealRequest{ID: "llama-shard-0", Data: bytes.NewReader(weights), Size: int64(len(weights))})
	if err != nil {
		panic(err)
	}
	fmt.Println("sealed", shard.ID, "on device", shard.Device, "digest", shard.Digest[:16])

	if err := rt.Verify(ctx, shard); err != nil {
		panic(err)
	}
	fmt.Println("verified")

	if err := rt.Free(ctx, shard); err != nil {
		panic(err)
	}
	if err := rt.Stop(ctx); err != nil {
		panic(err)
	}
	for _, r := range log.Records() {
		fmt.Println(r.Event)
	}
	// Output:
	// sealed llama-shard-0 on device 0 digest 5ae9782017a68037
	// verified
	// WorkerStarted
	// VramSealed
	// SealVerified
	// VramDeallocated
	// WorkerStopped
}
