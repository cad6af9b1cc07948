package stress

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
	"github.com/vramseal/vramseal/supervisor"
)

// discardSink acknowledges every record and keeps none: the runtime with no
// audit cost, for measuring against.
type discardSink struct{}

func (discardSink) Record(ctx context.Context, _ audit.Record) error { return ctx.Err() }

// newSims returns n simulated GPUs of capacity bytes each.
func newSims(n int, capacity int64) ([]*cuda.Sim, []cuda.Device, error) {
	sims := make([]*cuda.Sim, n)
	devices := make([]cuda.Device, n)
	for i := range n {
		sim, err := cuda.NewSim(cuda.SimConfig{Name: fmt.Sprintf("bench-%d", i), Capacity: capacity, Seed: int64(i)})
		if err != nil {
			return nil, nil, err
		}
		sims[i], devices[i] = sim, sim
	}
	return sims, devices, nil
}

// startRuntime starts a runtime over n fresh simulated GPUs.
func (b *bencher) startRuntime(ctx context.Context, n int, capacity int64, sink audit.Sink, edit func(*supervisor.Config)) (*supervisor.Runtime, []*cuda.Sim, error) {
	return b.startSims(ctx, supervisor.RigConfig{Capacities: slices.Repeat([]int64{capacity}, n)}, sink, edit)
}

// startSims starts a runtime over the fresh simulated GPUs rc describes.
func (b *bencher) startSims(ctx context.Context, rc supervisor.RigConfig, sink audit.Sink, edit func(*supervisor.Config)) (*supervisor.Runtime, []*cuda.Sim, error) {
	cfg := supervisor.Config{Key: b.key, WorkerID: "bench", Audit: sink, Logger: b.cfg.Logger}
	if edit != nil {
		edit(&cfg)
	}
	rc.Name, rc.Seed, rc.Config = "bench", -1, cfg
	rig, err := supervisor.MakeRig(ctx, rc)
	if err != nil {
		return nil, nil, err
	}
	return rig.Runtime, rig.Sims, nil
}

// stopRuntime stops rt, returning err if there was one already.
func stopRuntime(rt *supervisor.Runtime, err error) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if stopErr := rt.Stop(ctx); err == nil {
		err = stopErr
	}
	return err
}

// sealFunc and releaseFunc are what the throughput runs seal and release
// through: a Runtime's or a Baseline's.
type (
	sealFunc    func(context.Context, messages.SealRequest) (sealer.Shard, error)
	releaseFunc func(context.Context, sealer.Shard) error
)

// sealPattern seals size bytes of pool data onto device as id.
func (b *bencher) sealPattern(ctx context.Context, seal sealFunc, device int, id string, size int64) (sealer.Shard, error) {
	return seal(ctx, messages.SealRequest{Device: device, ID: id, Size: size,
		Data: &cycleReader{pool: b.pool, pos: rand.IntN(len(b.pool)), left: size}})
}
