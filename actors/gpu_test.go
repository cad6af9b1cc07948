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
	"github.com/vramseal/vramseal/internal/testwait"
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
	// drains counts the drain requests the actor has taken up.
	drains atomic.Int32
	// onMessage, if set, sees every request the actor takes up.
	onMessage atomic.Pointer[func(msg any)]
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
		OnMessage: func(msg any) {
			if _, ok := msg.(*drain); ok {
				f.drains.Add(1)
			}
			if hook := f.onMessage.Load(); hook != nil {
				(*hook)(msg)
			}
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

// armPanic makes the actor panic on its next request, once it has handled
// those sent so far (the lease ends a seal sends without waiting).
func (f *gpuFixture) armPanic(t *testing.T) {
	t.Helper()
	_, err := f.gpu.Capacity(context.Background())
	require.NoError(t, err)
	f.panicNext.Store(true)
}

// seal puts data on the device through the actor's protocol, as the runtime
// does, and returns the signed record.
func (f *gpuFixture) seal(t *testing.T, id string, data []byte) sealer.Shard {
	t.Helper()
	f.gen++
	a, err := f.gpu.Allocate(id, f.gen, int64(len(data)))
	require.NoError(t, err)
	for off := 0; off < len(data); off += chunkSize {
		require.NoError(t, f.sim.Write(a.Handle, int64(off), data[off:min(off+chunkSize, len(data))]))
	}
	sums := digestsOf(t, data)
	rec := sealer.Shard{ID: id, Size: int64(len(data)), Digest: sums.Digest, ChunkSize: chunkSize, ChunkRoot: sums.ChunkRoot, SealedAt: time.Now().UTC(), Generation: f.gen}
	require.NoError(t, sealer.Sign(f.key, &rec))
	require.NoError(t, a.Commit(rec, sums.Chunks))
	a.Unlease()
	return rec
}

// digestsOf hashes data as a seal does.
func digestsOf(t *testing.T, data []byte) sealer.Digests {
	t.Helper()
	d, err := sealer.NewDigester(chunkSize)
	require.NoError(t, err)
	d.Write(data)
	return d.Digests()
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
	_, err = f.gpu.Check(stale)
	assert.ErrorIs(t, err, messages.ErrUnknownShard, "a record of another generation is not live")
	_, err = f.gpu.Release(ctx, stale)
	assert.ErrorIs(t, err, messages.ErrUnknownShard, "and frees nothing")
	altered := live
	altered.Size++
	_, err = f.gpu.Check(altered)
	var ie *messages.IntegrityError
	require.ErrorAs(t, err, &ie, "a record of the live generation that differs")
	assert.Equal(t, messages.ReasonRecordMismatch, ie.Reason)
	_, err = f.gpu.Check(live)
	assert.NoError(t, err)
}

// signedRecord is the signed record of data sealed as id of generation gen.
func (f *gpuFixture) signedRecord(t *testing.T, id string, gen uint64, data []byte) (sealer.Shard, sealer.Digests) {
	t.Helper()
	sums := digestsOf(t, data)
	rec := sealer.Shard{ID: id, Size: int64(len(data)), Digest: sums.Digest, ChunkSize: chunkSize, ChunkRoot: sums.ChunkRoot, SealedAt: time.Now().UTC(), Generation: gen}
	require.NoError(t, sealer.Sign(f.key, &rec))
	return rec, sums
}

func TestGPUPlaceSealsASmallShardInOneMessage(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 0)
	data := []byte("a small shard, copied in the actor's turn")
	rec, sums := f.signedRecord(t, "small", 7, data)
	a, err := f.gpu.Place(rec, sums.Chunks, data)
	require.NoError(t, err)
	_, err = f.gpu.Check(rec)
	require.NoError(t, err, "live once placed")
	got := make([]byte, len(data))
	require.NoError(t, f.sim.Read(a.Handle, 0, got))
	assert.Equal(t, data, got)
	c, err := f.gpu.Capacity(context.Background())
	require.NoError(t, err)
	assert.Equal(t, messages.Capacity{Total: 1 << 20, Free: 1<<20 - int64(len(data)), Held: int64(len(data)), Shards: 1}, c)

	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = f.gpu.Release(short, rec)
	assert.ErrorIs(t, err, messages.ErrLeaseHeld, "the placed shard is under the seal's lease until it is recorded")
	a.Unlease()
	_, err = f.gpu.Release(context.Background(), rec)
	require.NoError(t, err)
	assert.Zero(t, f.sim.Outstanding())
}

func TestGPUPlaceRefusesWhatItCannotSeal(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 0)
	data := make([]byte, 100)
	rec, sums := f.signedRecord(t, "s", 7, data)
	_, err := f.gpu.Place(rec, sums.Chunks, data[:99])
	assert.ErrorIs(t, err, messages.ErrInvalidInput, "data of another size than the record's")
	big := make([]byte, PlaceLimit+1)
	bigRec, bigSums := f.signedRecord(t, "big", 8, big)
	_, err = f.gpu.Place(bigRec, bigSums.Chunks, big)
	assert.ErrorIs(t, err, messages.ErrInvalidInput, "more than PlaceLimit")

	f.sim.FailWriteAfter(10)
	_, err = f.gpu.Place(rec, sums.Chunks, data)
	require.Error(t, err, "a copy that fails")
	_, err = f.gpu.Check(rec)
	assert.ErrorIs(t, err, messages.ErrUnknownShard, "nothing unsealed is visible")
	assert.Zero(t, f.sim.Outstanding(), "its memory is freed at once")
	c, err := f.gpu.Capacity(context.Background())
	require.NoError(t, err)
	assert.Zero(t, c.Held, "and nothing is held")
}

// TestGPUWriteLeaseNeedsNoMessage defends write leases taken like read
// leases: with the mailbox held up, a seal still leases its allocation.
func TestGPUWriteLeaseNeedsNoMessage(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 0)
	a, err := f.gpu.Allocate("pending", 9, 100)
	require.NoError(t, err)
	a.Unlease()
	hold := make(chan struct{})
	held := make(chan struct{})
	var once atomic.Bool
	hook := func(msg any) {
		if _, ok := msg.(*capacityQuery); ok && once.CompareAndSwap(false, true) {
			close(held)
			<-hold
		}
	}
	f.onMessage.Store(&hook)
	queried := make(chan error, 1)
	go func() {
		_, err := f.gpu.Capacity(context.Background())
		queried <- err
	}()
	testwait.Receive(t, held, "the actor holding a message")
	require.NoError(t, a.Lease(), "a write lease while the mailbox is busy")
	a.Unlease()
	close(hold)
	require.NoError(t, testwait.Receive(t, queried, "the held query's answer"))
	require.NoError(t, a.Abort())
}

// TestGPUCommitRefusesARecordOfAnotherGeneration defends the generation
// check of a commit: a record signed for another generation of the same ID
// never makes this allocation live, so a stale record can never name it.
func TestGPUCommitRefusesARecordOfAnotherGeneration(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 0)
	for _, gen := range []uint64{41, 43} {
		a, err := f.gpu.Allocate("s", 42, 100)
		require.NoError(t, err)
		sums := digestsOf(t, make([]byte, 100))
		rec := sealer.Shard{ID: "s", Size: 100, Digest: sums.Digest, ChunkSize: chunkSize, ChunkRoot: sums.ChunkRoot, SealedAt: time.Now().UTC(), Generation: gen}
		require.NoError(t, sealer.Sign(f.key, &rec))
		assert.ErrorIs(t, a.Commit(rec, sums.Chunks), messages.ErrInvalidInput, "generation %d", gen)
		_, err = f.gpu.Check(rec)
		assert.ErrorIs(t, err, messages.ErrUnknownShard, "generation %d: nothing became live", gen)
		a.Unlease()
		require.NoError(t, a.Abort())
	}
	assert.Zero(t, f.sim.Outstanding())
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
	left, leased := f.gpu.Stop()
	assert.Empty(t, left, "nothing left after a drain")
	assert.Zero(t, leased)
}

func TestGPUFreeWaitsForLeases(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 0)
	rec := f.seal(t, "leased", make([]byte, 100))
	lease, err := f.gpu.Acquire(rec, nil)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = f.gpu.Release(ctx, rec)
	assert.ErrorIs(t, err, messages.ErrLeaseHeld, "a release bounded by its context")
	assert.Equal(t, 1, f.sim.Outstanding(), "memory under a lease is never freed")
	_, err = f.gpu.Check(rec)
	assert.NoError(t, err, "a release that gave up leaves the shard live")

	released := make(chan error, 1)
	go func() {
		_, err := f.gpu.Release(context.Background(), rec)
		released <- err
	}()
	require.Eventually(t, func() bool {
		_, err := f.gpu.Check(rec)
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
	require.NoError(t, testwait.Receive(t, released, "end of the release once the lease ended"))
	assert.Zero(t, f.sim.Outstanding(), "freed once the lease ended")
}

func TestGPUPanicEscalatesAsASoftwareFault(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 0)
	f.seal(t, "a", make([]byte, 100))
	f.armPanic(t)
	_, err := f.gpu.Capacity(context.Background())
	require.ErrorIs(t, err, messages.ErrStopped)
	err = testwait.Receive(t, f.failed, "fail-stop of the escalation")
	assert.ErrorIs(t, err, messages.ErrSoftwareFault)
	assert.NotErrorIs(t, err, messages.ErrDeviceFault)
	freed, leased := f.gpu.Stop()
	assert.Len(t, freed, 1, "the stopped actor freed the shard it named")
	assert.Zero(t, leased)
	assert.Zero(t, f.sim.Outstanding())
}

func TestGPUPanicNeverFreesLeasedMemory(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 0)
	leasedRec := f.seal(t, "leased", []byte("weights in use"))
	f.seal(t, "free", make([]byte, 100))
	lease, err := f.gpu.Acquire(leasedRec, nil)
	require.NoError(t, err)
	f.armPanic(t)
	_, err = f.gpu.Capacity(context.Background())
	require.ErrorIs(t, err, messages.ErrStopped)
	require.ErrorIs(t, testwait.Receive(t, f.failed, "fail-stop of the escalation"), messages.ErrSoftwareFault)
	freed, leased := f.gpu.Stop()
	require.Len(t, freed, 1)
	assert.Equal(t, "free", freed[0].Shard.ID, "only what no lease holds is freed")
	assert.Equal(t, 1, leased, "the leased allocation is reported, not freed")
	got := make([]byte, len("weights in use"))
	require.NoError(t, f.sim.Read(lease.Handle, 0, got), "the leased memory is still there")
	assert.Equal(t, "weights in use", string(got))
	lease.End()
}

// leaseAndGiveUpADrain seals a shard, leases it, and drains the device
// with a context that ends while the lease is held.
func (f *gpuFixture) leaseAndGiveUpADrain(t *testing.T) *ReadLease {
	t.Helper()
	rec := f.seal(t, "leased", make([]byte, 100))
	lease, err := f.gpu.Acquire(rec, nil)
	require.NoError(t, err)
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = f.gpu.Drain(short, messages.ErrEvicted)
	require.ErrorIs(t, err, messages.ErrLeaseHeld)
	return lease
}

// drainInBackground starts a drain that waits as long as it must.
func drainInBackground(f *gpuFixture) <-chan []Freed {
	out := make(chan []Freed, 1)
	go func() {
		freed, _ := f.gpu.Drain(context.Background(), messages.ErrStopped)
		out <- freed
	}()
	return out
}

func TestGPUDrainTakesWhatAnEarlierDrainGaveUpOn(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 0)
	lease := f.leaseAndGiveUpADrain(t)

	drained := drainInBackground(f)
	select {
	case freed := <-drained:
		t.Fatalf("the second drain answered under a lease, with %d freed", len(freed))
	case <-time.After(50 * time.Millisecond):
	}
	assert.Equal(t, 1, f.sim.Outstanding(), "memory under a lease is never freed")
	lease.End()
	freed := testwait.Receive(t, drained, "end of the drain once the lease ended")
	require.Len(t, freed, 1, "the second drain waited for the shard and freed it")
	assert.Equal(t, "leased", freed[0].Shard.ID)
	assert.Zero(t, f.sim.Outstanding())
	assert.Empty(t, f.gpu.TakeOrphans(), "recorded once, by the drain that freed it")
}

func TestGPUStopKeepsMemoryAGivenUpDrainLeft(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 0)
	lease := f.leaseAndGiveUpADrain(t)
	freed, leased := f.gpu.Stop()
	assert.Empty(t, freed)
	assert.Equal(t, 1, leased)
	assert.Equal(t, 1, f.sim.Outstanding(), "memory under a lease is never freed")
	lease.End()
}

func TestGPUDrainTakesAShardAReleaseWaitsFor(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 0)
	rec := f.seal(t, "leased", make([]byte, 100))
	lease, err := f.gpu.Acquire(rec, nil)
	require.NoError(t, err)
	releaseCtx, stopReleasing := context.WithCancel(context.Background())
	released := make(chan error, 1)
	go func() {
		_, err := f.gpu.Release(releaseCtx, rec)
		released <- err
	}()
	require.Eventually(t, func() bool {
		_, err := f.gpu.Check(rec)
		return err != nil
	}, 10*time.Second, time.Millisecond, "the release is waiting")

	drained := drainInBackground(f)
	require.Eventually(t, func() bool { return f.drains.Load() == 1 }, 10*time.Second, time.Millisecond, "the drain reached the actor")
	stopReleasing()
	require.ErrorIs(t, testwait.Receive(t, released, "end of the release that gave up"), messages.ErrLeaseHeld)
	_, err = f.gpu.Check(rec)
	assert.ErrorIs(t, err, messages.ErrUnknownShard, "a drain took it: the release giving up does not put it back")
	lease.End()
	freed := testwait.Receive(t, drained, "end of the drain once the lease ended")
	require.Len(t, freed, 1, "the drain waited for the shard and freed it")
	assert.Equal(t, "leased", freed[0].Shard.ID)
	assert.Zero(t, f.sim.Outstanding())
}

func TestGPUDrainRevokesTheLeasesItTakes(t *testing.T) {
	f := newGPUFixture(t, 1<<20, 0)
	rec := f.seal(t, "leased", make([]byte, 100))
	revoked := make(chan error, 1)
	lease, err := f.gpu.Acquire(rec, func(cause error) { revoked <- cause })
	require.NoError(t, err)
	ended, err := f.gpu.Acquire(rec, func(error) { t.Error("a lease that ended is not revoked") })
	require.NoError(t, err)
	ended.End()

	drained := drainInBackground(f)
	select {
	case cause := <-revoked:
		assert.ErrorIs(t, cause, messages.ErrStopped, "the drain's cause")
	case <-time.After(testwait.Bound):
		t.Fatal("the drain did not revoke the lease it waits for")
	}
	lease.End()
	assert.Len(t, testwait.Receive(t, drained, "end of the drain once the lease ended"), 1)
}
