package supervisor_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/supervisor"
)

// Example_worker is a whole worker on a simulated GPU: it opens a runtime
// from a token file, seals a safetensors model, acquires it verified, reads
// a tensor, handles the lease's revocation and stops.
func Example_worker() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "vramseal-worker")
	check(err)
	defer os.RemoveAll(dir)
	tokenFile, modelFile := writeDeployment(dir)

	gpu, err := cuda.NewSim(cuda.SimConfig{Capacity: 64 << 20}) // on a GPU: driver.Open(0), from cuda/driver
	check(err)
	rt, err := supervisor.Open(ctx, supervisor.OpenConfig{
		TokenFile: tokenFile,                         // mode 0600, both keys derived from it
		AuditLog:  filepath.Join(dir, "audit.jsonl"), // the runtime closes it when it stops
		Config:    supervisor.Config{Devices: []cuda.Device{gpu}, WorkerID: "worker-1"},
	}) // scrubs every 30 s by default
	check(err)

	f, err := os.Open(modelFile)
	check(err)
	info, err := f.Stat()
	check(err)
	req, err := supervisor.SafetensorsRequest("model", f, info.Size()) // header checked, table signed
	check(err)
	shard, err := rt.Seal(ctx, req)
	check(err)
	check(f.Close())

	lease, err := rt.Acquire(ctx, shard, supervisor.Verified()) // re-hashed, then leased
	check(err)
	t, _ := lease.Tensor("embed.weight")
	view, err := lease.View() // on a GPU: lease.DevicePointer() + t.Offset, for kernels
	check(err)
	row := make([]byte, 4)
	_, err = view.ReadAt(row, t.Offset)
	check(err)
	fmt.Println(t.Name, t.DType, t.Shape, "first row", row)

	// An Evict (another process wants the GPU), Stop or a fail-stop revokes
	// the lease: stop using the memory, then Release it.
	evicted := make(chan error, 1)
	go func() {
		_, err := rt.Evict(ctx, 0, "another process needs the GPU")
		evicted <- err
	}()
	<-lease.Revoked()
	fmt.Println("revoked:", errors.Is(lease.Err(), supervisor.ErrRevoked), "evicted:", errors.Is(lease.Err(), supervisor.ErrEvicted))
	_, err = view.ReadAt(row, t.Offset)
	fmt.Println("reads after revocation fail:", errors.Is(err, supervisor.ErrRevoked))
	lease.Release() // the eviction frees the memory now
	check(<-evicted)

	check(rt.Stop(ctx)) // after a fail-stop, <-rt.Done() and rt.Err() say why
	// Output:
	// embed.weight U8 [4 4] first row [0 1 2 3]
	// revoked: true evicted: true
	// reads after revocation fail: true
}

// writeDeployment writes what a deployment provides: the worker token
// (0600) and a safetensors model of one 4x4 tensor.
func writeDeployment(dir string) (tokenFile, modelFile string) {
	tokenFile = filepath.Join(dir, "worker.token")
	check(os.WriteFile(tokenFile, []byte("example-token-0123456789abcdef"), 0o600))
	header := []byte(`{"embed.weight":{"dtype":"U8","shape":[4,4],"data_offsets":[0,16]}}`)
	file := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	file = append(file, header...)
	for i := range 16 {
		file = append(file, byte(i))
	}
	modelFile = filepath.Join(dir, "model.safetensors")
	check(os.WriteFile(modelFile, file, 0o644))
	return tokenFile, modelFile
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}
