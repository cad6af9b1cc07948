package supervisor_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/supervisor"
)

// ExampleRuntime_Acquire seals a shard, acquires it verified, runs a
// stand-in "kernel" over the leased memory and releases it. On the CUDA
// backend the kernel would get the lease's DevicePointer instead of a View.
func ExampleRuntime_Acquire() {
	ctx := context.Background()
	keys, err := supervisor.DeriveKeys([]byte("example-token-0123456789"), "worker-1")
	if err != nil {
		panic(err)
	}
	gpu, err := cuda.NewSim(cuda.SimConfig{Capacity: 64 << 20})
	if err != nil {
		panic(err)
	}
	rt, err := supervisor.Start(ctx, supervisor.Config{Devices: []cuda.Device{gpu}, Key: keys.Seal, WorkerID: "worker-1", Audit: audit.NewMemory()})
	if err != nil {
		panic(err)
	}
	weights := bytes.Repeat([]byte{0x42}, 1<<20)
	shard, err := rt.Seal(ctx, supervisor.SealRequest{ID: "layer-0", Data: bytes.NewReader(weights), Size: int64(len(weights))})
	if err != nil {
		panic(err)
	}

	lease, err := rt.Acquire(ctx, shard, supervisor.Verified()) // verify, then execute: one call
	if err != nil {
		panic(err)
	}
	view, err := lease.View()
	if err != nil {
		panic(err)
	}
	kernel := sha256.New() // the stand-in kernel reads every byte
	if _, err := io.Copy(kernel, io.NewSectionReader(view, 0, lease.Size())); err != nil {
		panic(err)
	}
	fmt.Printf("kernel saw %d bytes, digest matches the seal: %v\n", lease.Size(), fmt.Sprintf("%x", kernel.Sum(nil)) == shard.Digest)
	lease.Release()

	if err := rt.Stop(ctx); err != nil {
		panic(err)
	}
	// Output:
	// kernel saw 1048576 bytes, digest matches the seal: true
}
