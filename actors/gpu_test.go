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

// gpuFixture is one GPU actor over a simulated device, under a supervisor.
type gpuFixture struct {
	sim    *cuda.Sim
	gpu    *GPURef
	key    *sealer.Key
	failed chan error
	gen    uint64
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
	sup, err := SpawnSupervisor(system, SupervisorConfig{
		VerifierMaxRestarts: 1, VerifierRestartWindow: time.Minute, Logger: logger,
		FailStop: func(err error) { f.failed <- err },
	})
	require.NoError(t, err)
	f.gpu, err = sup.SpawnGPU(GPUConfig{Index: 0, Device: sim, Headroom: headroom, Logger: logger,
		OnMessage: func(any) {
			if f.panicNext.Load() {
				panic("injected GPU actor panic")
			}
		}})
	require.NoError(t, err)
	t.Cleanup(func() {
		f.gpu.Stop()
		sup.Stop()
		require.NoError(t, sim.Close())
		system.Shutdown()
	})
	return f
}

// seal puts data on the device through the actor's protocol, as the runtime
// does, and returns the signed record.
func (f *gpuFixture) seal(t *testing.T, id string, data []byte) sealer.Shard {
	t.Helper()
	f.gen++
	a, err := f.gpu.Allocate(id, f.gen, int64(len(data)))
	require.NoError(t, err)
	d, err := sealer.NewDigester(chunkSize)
	require.NoError(t, err)
	for off := 0; off < len(data); off += chunkSize {
		chunk := data[off:min(off+chunkSize, len(data))]
		d.Write(chunk)
		require.NoError(t, f.sim.Write(a.Handle, int64(off), chunk))
	}
	sums := d.Digests()
	rec := sealer.Shard{ID: id, Size: int64(len(data)), Digest: sums.Digest, ChunkSize: chunkSize, ChunkRoot: sums.ChunkRoot, SealedAt: time.Now().UTC(), Generation: f.gen}
	require.NoError(t, sealer.Sign(f.key, &rec))
	require.NoError(t, a.Commit(rec, sums.Chunks))
	a.Unlease()
	return rec
}

func TestGPUAccounting(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 1<<18)
	ctx := context.Background()

	pending, err := f.gpu.Allocate("pending", 99, 1000)
	require.NoError(t, err)
	pending.Unlease()
	c, err := f.gpu.Capacity(ctx)
	require.NoError(t, err)
	assert.Equal(t, messages.Capacity{Total: 1 << 20, Free: 1<<20 - 1000, Held: 1000, Pending: 1000, Headroom: 1 << 18}, c)

	sealed := f.seal(t, "sealed", make([]byte, 3000))
	c, err = f.gpu.Capacity(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(4000), c.Held)
	assert.Equal(t, int64(1000), c.Pending)
	assert.Equal(t, 1, c.Shards)

	_, err = f.gpu.Allocate("too-big", 98, 1<<20-4000-1<<18+1)
	var vramErr *messages.InsufficientVRAMError
	require.ErrorAs(t, err, &vramErr)
	assert.Equal(t, int64(1<<20-4000-1<<18), vramErr.Available, "headroom is not offered")

	require.NoError(t, pending.Abort())
	_, err = f.gpu.Release(ctx, sealed)
	require.NoError(t, err)
	c, err = f.gpu.Capacity(ctx)
	require.NoError(t, err)
	assert.Zero(t, c.Held)
	assert.Zero(t, f.sim.Outstanding())
}

func TestGPURefusesWhatItDoesNotHold(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 0)
	live := f.seal(t, "live", make([]byte, 100))
	pending, err := f.gpu.Allocate("pending", 50, 100)
	require.NoError(t, err)
	pending.Unlease()
	ctx := context.Background()

	_, err = f.gpu.Allocate("live", 51, 1)
	assert.ErrorIs(t, err, messages.ErrDuplicateShard)
	_, err = f.gpu.Allocate("pending", 52, 1)
	assert.ErrorIs(t, err, messages.ErrDuplicateShard)
	_, _, err = f.gpu.LeaseRead("pending", 50)
	assert.ErrorIs(t, err, messages.ErrUnknownShard, "nothing unsealed is readable")
	_, _, err = f.gpu.LeaseRead("live", live.Generation+1)
	assert.ErrorIs(t, err, messages.ErrUnknownShard, "a stale generation")
	stale := live
	stale.Generation++
	_, err = f.gpu.Check(ctx, stale)
	assert.ErrorIs(t, err, messages.ErrUnknownShard, "a record of another generation is not live")
	_, err = f.gpu.Release(ctx, stale)
	assert.ErrorIs(t, err, messages.ErrUnknownShard, "and frees nothing")
	altered := live
	altered.Size++
	_, err = f.gpu.Check(ctx, altered)
	var ie *messages.IntegrityError
	require.ErrorAs(t, err, &ie, "a record of the live generation that differs")
	assert.Equal(t, messages.ReasonRecordMismatch, ie.Reason)
	_, err = f.gpu.Check(ctx, live)
	assert.NoError(t, err)
}

func TestGPUDrainFreesEverythingAndRevokesSeals(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 0)
	f.seal(t, "a", make([]byte, 100))
	f.seal(t, "b", make([]byte, 200))
	pending, err := f.gpu.Allocate("pending", 77, 300)
	require.NoError(t, err)
	pending.Unlease()
	freed, err := f.gpu.Drain(context.Background(), messages.ErrEvicted)
	require.NoError(t, err)
	var ids []string
	for _, fr := range freed {
		ids = append(ids, fr.Shard.ID)
		assert.Equal(t, fr.Shard.ID == "pending", fr.Pending)
	}
	assert.ElementsMatch(t, []string{"a", "b", "pending"}, ids)
	assert.Zero(t, f.sim.Outstanding())
	err = pending.Lease()
	assert.ErrorIs(t, err, messages.ErrRevoked)
	assert.ErrorIs(t, err, messages.ErrEvicted, "the seal hears why")
	assert.ErrorIs(t, pending.Abort(), messages.ErrRevoked, "the drain freed it")
	assert.Empty(t, f.gpu.Stop(), "nothing left after a drain")
}

func TestGPUFreeWaitsForLeases(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 0)
	rec := f.seal(t, "leased", make([]byte, 100))
	lease, err := f.gpu.Acquire(rec)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = f.gpu.Release(ctx, rec)
	assert.ErrorIs(t, err, messages.ErrLeaseHeld, "a release bounded by its context")
	assert.Equal(t, 1, f.sim.Outstanding(), "memory under a lease is never freed")
	_, err = f.gpu.Check(context.Background(), rec)
	assert.NoError(t, err, "a release that gave up leaves the shard live")

	released := make(chan error, 1)
	go func() {
		_, err := f.gpu.Release(context.Background(), rec)
		released <- err
	}()
	require.Eventually(t, func() bool {
		_, err := f.gpu.Check(context.Background(), rec)
		return err != nil
	}, 10*time.Second, time.Millisecond, "the release is waiting")
	assert.Equal(t, 1, f.sim.Outstanding())
	select {
	case err := <-released:
		t.Fatalf("release returned under a lease: %v", err)
	default:
	}
	lease.End()
	lease.End() // idempotent
	require.NoError(t, <-released)
	assert.Zero(t, f.sim.Outstanding(), "freed once the lease ended")
}

func TestGPUPanicEscalatesAsASoftwareFault(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 0)
	f.seal(t, "a", make([]byte, 100))
	f.panicNext.Store(true)
	_, err := f.gpu.Capacity(context.Background())
	require.ErrorIs(t, err, messages.ErrStopped)
	err = <-f.failed
	assert.ErrorIs(t, err, messages.ErrSoftwareFault)
	assert.NotErrorIs(t, err, messages.ErrDeviceFault)
	assert.Len(t, f.gpu.Stop(), 1, "the stopped actor freed the shard it named")
	assert.Zero(t, f.sim.Outstanding())
}
