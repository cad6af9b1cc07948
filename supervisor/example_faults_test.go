package supervisor_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/supervisor"
)

// startSim starts a runtime over one simulated GPU of 64 MiB, with 64 KiB
// chunks, recording to memory.
func startSim(ctx context.Context) (*supervisor.Runtime, *cuda.Sim) {
	keys, err := supervisor.DeriveKeys([]byte("example-token-0123456789"), "worker-1")
	check(err)
	gpu, err := cuda.NewSim(cuda.SimConfig{Capacity: 64 << 20})
	check(err)
	rt, err := supervisor.Start(ctx, supervisor.Config{
		Devices: []cuda.Device{gpu}, Key: keys.Seal, WorkerID: "worker-1", Audit: audit.NewMemory(), ChunkSize: 64 << 10,
	})
	check(err)
	return rt, gpu
}

// twoTensors is a safetensors file of two 128 KiB tensors of zeros.
func twoTensors() []byte {
	header := []byte(`{"a":{"dtype":"U8","shape":[131072],"data_offsets":[0,131072]},` +
		`"b":{"dtype":"U8","shape":[131072],"data_offsets":[131072,262144]}}`)
	file := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	file = append(file, header...)
	return append(file, make([]byte, 262144)...)
}

// ExampleSafetensorsRequest seals a safetensors file with its tensor table
// and finds a tensor's bytes in the sealed shard.
func ExampleSafetensorsRequest() {
	ctx := context.Background()
	rt, _ := startSim(ctx)
	defer rt.Stop(ctx)
	file := twoTensors()
	req, err := supervisor.SafetensorsRequest("two", bytes.NewReader(file), int64(len(file)))
	check(err)
	shard, err := rt.Seal(ctx, req)
	check(err)
	for _, t := range shard.Tensors {
		fmt.Println(t.Name, t.DType, t.Shape, "bytes", t.Offset, "to", t.End())
	}

	_, err = supervisor.SafetensorsRequest("broken", bytes.NewReader(file[:100]), 100)
	fmt.Println("a truncated file is refused:", errors.Is(err, supervisor.ErrInvalidInput))
	// Output:
	// a U8 [131072] bytes 138 to 131210
	// b U8 [131072] bytes 131210 to 262282
	// a truncated file is refused: true
}

// ExampleRuntime_Verify plants a fault on a simulated GPU, a flipped bit in
// tensor b, and shows Verify catch it: the error names the chunk, the
// bytes and the tensor, and the worker fail-stops.
func ExampleRuntime_Verify() {
	ctx := context.Background()
	rt, gpu := startSim(ctx)
	file := twoTensors()
	req, err := supervisor.SafetensorsRequest("two", bytes.NewReader(file), int64(len(file)))
	check(err)
	shard, err := rt.Seal(ctx, req)
	check(err)

	check(gpu.FlipBit(gpu.Allocations()[0].Handle, 200_000, 3)) // the fault, planted
	err = rt.Verify(ctx, shard)
	var ie *supervisor.IntegrityError
	if errors.As(err, &ie) {
		fmt.Println("chunk", ie.Chunk, "tensors", ie.Tensors)
	}
	<-rt.Done()
	fmt.Println("fail-stop:", errors.Is(rt.Err(), supervisor.ErrSealVerificationFailed))
	// Output:
	// chunk 3 tensors [b]
	// fail-stop: true
}

// ExampleLease_Err shows a lease revoked by a fail-stop: Err matches
// ErrRevoked and the cause, and the memory is freed once it is released.
func ExampleLease_Err() {
	ctx := context.Background()
	rt, _ := startSim(ctx)
	file := twoTensors()
	req, err := supervisor.SafetensorsRequest("two", bytes.NewReader(file), int64(len(file)))
	check(err)
	shard, err := rt.Seal(ctx, req)
	check(err)
	lease, err := rt.Acquire(ctx, shard)
	check(err)

	rt.FailStop(fmt.Errorf("GPU health: XID 79: %w", supervisor.ErrDeviceFault))
	<-lease.Revoked()
	fmt.Println("revoked:", errors.Is(lease.Err(), supervisor.ErrRevoked), "device fault:", errors.Is(lease.Err(), supervisor.ErrDeviceFault))
	_, err = lease.View()
	fmt.Println("view refused:", errors.Is(err, supervisor.ErrRevoked))
	lease.Release()
	<-rt.Done()
	// Output:
	// revoked: true device fault: true
	// view refused: true
}
