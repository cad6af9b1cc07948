package actors

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

const chunkSize = 64 << 10

// gpuFixture is one GPU actor over a simulated device.
type gpuFixture struct {
	sim    *cuda.Sim
	gpu    *GPURef
	key    *sealer.Key
	failed chan error
	// panicNext makes the actor panic on its next request.
	panicNext atomic.Bool
}

func newGPUFixture(t *testing.T, capacity, headroom int64) *gpuFixture {
	t.Helper()
	sim, err := cuda.NewSim(cuda.SimConfig{Capacity: capacity, Seed: 1})
	require.NoError(t, err)
	key, err := sealer.DeriveKey([]byte("actors-test-token-0123456789"), "w")
	require.NoError(t, err)
	logger := slog.New(slog.DiscardHandler)
	system := NewSystem(logger)
	f := &gpuFixture{sim: sim, key: key, failed: make(chan error, 1)}
	f.gpu, err = SpawnGPU(system.Root, GPUConfig{Index: 0, Device: sim, Headroom: headroom, Logger: logger,
		OnMessage: func(any) {
			if f.panicNext.Load() {
				panic("injected GPU actor panic")
			}
		}},
		NewGPUStrategy(func(err error) { f.failed <- err }))
	require.NoError(t, err)
	t.Cleanup(func() {
		f.gpu.Stop()
		require.NoError(t, sim.Close())
		system.Shutdown()
	})
	return f
}

// seal puts data on the device through the actor's protocol, as the runtime
// does, and returns the actor's view of the new shard.
func (f *gpuFixture) seal(t *testing.T, id string, data []byte) ShardView {
	t.Helper()
	require.NoError(t, f.gpu.Allocate(id, int64(len(data)), nil))
	d, err := sealer.NewDigester(chunkSize)
	require.NoError(t, err)
	for off := 0; off < len(data); off += chunkSize {
		chunk := data[off:min(off+chunkSize, len(data))]
		d.Write(chunk)
		require.NoError(t, f.gpu.Write(id, int64(off), chunk))
	}
	sums := d.Digests()
	rec := sealer.Shard{ID: id, Size: int64(len(data)), Digest: sums.Digest, ChunkSize: chunkSize, ChunkRoot: sums.ChunkRoot, SealedAt: time.Now().UTC()}
	require.NoError(t, sealer.Sign(f.key, &rec))
	require.NoError(t, f.gpu.Commit(rec, sums.Chunks))
	v, err := f.gpu.Lookup(context.Background(), id)
	require.NoError(t, err)
	return v
}

func TestGPUAccounting(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 1<<18)
	ctx := context.Background()

	require.NoError(t, f.gpu.Allocate("pending", 1000, nil))
	c, err := f.gpu.Capacity(ctx)
	require.NoError(t, err)
	assert.Equal(t, messages.Capacity{Total: 1 << 20, Free: 1<<20 - 1000, Held: 1000, Pending: 1000, Headroom: 1 << 18}, c)

	f.seal(t, "sealed", make([]byte, 3000))
	c, err = f.gpu.Capacity(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(4000), c.Held)
	assert.Equal(t, int64(1000), c.Pending)
	assert.Equal(t, 1, c.Shards)

	err = f.gpu.Allocate("too-big", 1<<20-4000-1<<18+1, nil)
	var vramErr *messages.InsufficientVRAMError
	require.ErrorAs(t, err, &vramErr)
	assert.Equal(t, int64(1<<20-4000-1<<18), vramErr.Available, "headroom is not offered")

	require.NoError(t, f.gpu.Abort("pending"))
	require.NoError(t, f.gpu.Release("sealed"))
	c, err = f.gpu.Capacity(ctx)
	require.NoError(t, err)
	assert.Zero(t, c.Held)
	assert.Zero(t, f.sim.Outstanding())
}

func TestGPURefusesWhatItDoesNotHold(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 0)
	v := f.seal(t, "live", make([]byte, 100))
	require.NoError(t, f.gpu.Allocate("pending", 100, nil))

	assert.ErrorIs(t, f.gpu.Allocate("live", 1, nil), messages.ErrDuplicateShard)
	assert.ErrorIs(t, f.gpu.Allocate("pending", 1, nil), messages.ErrDuplicateShard)
	assert.ErrorIs(t, f.gpu.Write("live", 0, []byte{1}), messages.ErrUnknownShard, "sealed memory is never written")
	assert.ErrorIs(t, f.gpu.Write("nobody", 0, []byte{1}), messages.ErrUnknownShard)
	assert.ErrorIs(t, f.gpu.Abort("live"), messages.ErrUnknownShard)
	assert.ErrorIs(t, f.gpu.Release("pending"), messages.ErrUnknownShard)
	assert.ErrorIs(t, f.gpu.Read("live", v.Gen+1, 0, make([]byte, 1)), messages.ErrUnknownShard, "a stale generation")
	_, err := f.gpu.Lookup(context.Background(), "pending")
	assert.ErrorIs(t, err, messages.ErrUnknownShard, "nothing unsealed is visible")
}

func TestGPUDrainFreesEverything(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 0)
	f.seal(t, "a", make([]byte, 100))
	f.seal(t, "b", make([]byte, 200))
	require.NoError(t, f.gpu.Allocate("pending", 300, nil))
	freed, err := f.gpu.Drain()
	require.NoError(t, err)
	var ids []string
	for _, s := range freed {
		ids = append(ids, s.ID)
	}
	assert.Equal(t, []string{"a", "b"}, ids)
	assert.Zero(t, f.sim.Outstanding())
	assert.Empty(t, f.gpu.Stop(), "nothing left after a drain")
}

func TestGPUPanicStopsTheActorAndFreesItsMemory(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 0)
	f.seal(t, "a", make([]byte, 100))
	f.panicNext.Store(true)
	_, err := f.gpu.Capacity(context.Background())
	require.ErrorIs(t, err, messages.ErrStopped)
	assert.ErrorIs(t, <-f.failed, messages.ErrDeviceFault)
	assert.Len(t, f.gpu.Stop(), 1, "the panicked actor freed the shard it named")
	assert.Zero(t, f.sim.Outstanding())
}

func TestGPUAllocateCopiesTheFirstChunk(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 0)
	require.NoError(t, f.gpu.Allocate("small", 3, []byte{1, 2, 3}))
	got := make([]byte, 3)
	require.NoError(t, f.sim.Read(f.sim.Allocations()[0].Handle, 0, got))
	assert.Equal(t, []byte{1, 2, 3}, got)

	f.sim.FailWriteAfter(1)
	err := f.gpu.Allocate("torn", 3, []byte{4, 5, 6})
	assert.ErrorIs(t, err, cuda.ErrCopyFailed)
	assert.Equal(t, 1, f.sim.Outstanding(), "a failed first copy frees its allocation")
	assert.ErrorIs(t, f.gpu.Abort("torn"), messages.ErrUnknownShard, "and leaves no pending seal")
}
