package actors

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/internal/rehash"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// GPURef is how callers talk to one GPU actor. A call that changes the
// table sends a request with its own reply channel and waits for the
// answer or for the actor to stop, even if the caller's context ends,
// because the answer may carry memory someone must own; they are quick,
// since the actor only changes its table (Place also copies at most
// PlaceLimit bytes). Checking a record and leasing a live shard (Check,
// Acquire, LeaseRead) send nothing: they read the actor's live index and
// take the lease with an atomic, as a seal's write lease is taken
// (Allocation.Lease), so a thousand callers never queue behind the mailbox.
type GPURef struct {
	index  int
	device cuda.Device
	live   *liveIndex
	// onAcquire is GPUConfig.OnAcquire.
	onAcquire func()
	send      func(msg any)
	stop      func()
	// stopped is closed by the GPU parent once the actor has stopped.
	stopped <-chan struct{}
	// stopReply is the actor's answer to its stop, sent in its last turn
	// (protoactor's stop carries no reply channel, so the spawn makes it).
	stopReply <-chan stopReport
	// mailbox is the goroutine the actor runs on; Stop waits for it.
	mailbox *ownGoroutine
}

// stopReport is what a GPU actor freed as it stopped, and how many
// allocations it left allocated because they were leased.
type stopReport struct {
	freed  []Freed
	leased int
}

// Index is the device index the actor owns.
func (g *GPURef) Index() int { return g.index }

// Device is the device the actor owns. Callers copy through it only under
// a lease the actor granted.
func (g *GPURef) Device() cuda.Device { return g.device }

// Allocation is a seal's memory while it fills it: pending until Commit.
// The seal copies into Handle only while it holds a write lease.
type Allocation struct {
	g      *GPURef
	e      *entry
	Handle cuda.Handle
}

// Allocate reserves size bytes for a pending seal named id of generation
// gen, and returns it with a write lease held.
func (g *GPURef) Allocate(id string, gen uint64, size int64) (*Allocation, error) {
	r, err := await(g, &allocate{id: id, gen: gen, size: size, reply: make(chan leaseReply, 1)})
	if err == nil {
		err = r.err
	}
	if err != nil {
		return nil, err
	}
	return &Allocation{g: g, e: r.e, Handle: r.handle}, nil
}

// PlaceLimit is the largest shard Place seals: copying it in the GPU
// actor's turn costs less than the message round trip it saves.
const PlaceLimit = 64 << 10

// Place seals a small shard in one message: the GPU actor allocates the
// memory record names (its ID, generation and size), copies data in and
// makes it live, with a lease held that the caller ends with Unlease once
// the seal is recorded. data must be record.Size bytes, at most
// PlaceLimit. A copy that fails frees the memory at once.
func (g *GPURef) Place(record sealer.Shard, chunks []sealer.ChunkDigest, data []byte) (*Allocation, error) {
	r, err := await(g, &place{record: record, chunks: chunks, data: data, reply: make(chan leaseReply, 1)})
	if err == nil {
		err = r.err
	}
	if err != nil {
		return nil, err
	}
	return &Allocation{g: g, e: r.e, Handle: r.handle}, nil
}

// Lease takes a write lease on the allocation, as a read lease is taken:
// with a compare-and-swap, no message. It fails with an error wrapping
// messages.ErrRevoked once an eviction or stop took the allocation back,
// or messages.ErrStopped once the actor stopped.
func (a *Allocation) Lease() error {
	select {
	case <-a.g.stopped:
		return a.g.stoppedErr()
	default:
	}
	if !a.e.pins.take() {
		return a.e.revoked()
	}
	return nil
}

// Unlease ends the write lease taken by Allocate, Place, Lease or Commit.
func (a *Allocation) Unlease() { a.g.endLease(a.e) }

// Commit makes the allocation the live shard record names. The caller must
// hold a write lease, which carries over to the live shard: end it with
// Unlease once the seal is recorded.
func (a *Allocation) Commit(record sealer.Shard, chunks []sealer.ChunkDigest) error {
	err, stopErr := await(a.g, &commit{e: a.e, record: record, chunks: chunks, reply: make(chan error, 1)})
	if stopErr != nil {
		return stopErr
	}
	return err
}

// Abort frees the allocation, pending or just committed, once the caller's
// lease ends. It returns an error wrapping messages.ErrRevoked if an
// eviction or stop took it back first (and recorded it).
func (a *Allocation) Abort() error {
	err, stopErr := await(a.g, &abort{e: a.e, reply: make(chan error, 1)})
	if stopErr != nil {
		return stopErr
	}
	return err
}

// ReadLease is a read lease on a live shard: its memory is not freed until
// End. End is idempotent.
type ReadLease struct {
	g      *GPURef
	e      *entry
	ended  atomic.Bool
	Handle cuda.Handle
	Shard  rehash.Shard
}

// End ends the lease.
func (l *ReadLease) End() {
	if l.ended.CompareAndSwap(false, true) {
		l.e.holderSet().Remove(l)
		l.g.endLease(l.e)
	}
}

// endLease ends one lease on e, and tells the actor if it was the last on
// memory it is waiting to free (a stopped actor frees nothing more).
func (g *GPURef) endLease(e *entry) {
	if !e.pins.drop() {
		return
	}
	select {
	case <-g.stopped:
	default:
		g.send(&leasesEnded{e: e})
	}
}

// LeaseRead grants a read lease on the live shard id of generation gen; it
// is how the verify engine reads.
func (g *GPURef) LeaseRead(id string, gen uint64) (cuda.Handle, func(), error) {
	e, err := g.lookup(id, func(e *entry) (*entry, error) {
		if e == nil || e.gen != gen {
			return nil, fmt.Errorf("shard %+q: %w", id, messages.ErrUnknownShard)
		}
		return e, nil
	})
	if err != nil {
		return 0, nil, err
	}
	if !e.pins.take() {
		return 0, nil, fmt.Errorf("shard %+q: %w", id, messages.ErrUnknownShard)
	}
	l := &ReadLease{g: g, e: e, Handle: e.handle, Shard: e.shard}
	return l.Handle, l.End, nil
}

// Acquire checks a caller's record against the table (as Check) and grants
// a read lease on the shard. revoke, if set, is called with the drain's
// cause when an eviction or stop takes the shard while the lease is held,
// possibly from the actor's goroutine: it must not block. A lease granted
// before a drain closed the shard is revoked by it, however close the two.
func (g *GPURef) Acquire(record sealer.Shard, revoke func(cause error)) (*ReadLease, error) {
	e, err := g.lookup(record.ID, func(e *entry) (*entry, error) { return checkEntry(e, record, g.index) })
	if err != nil {
		return nil, err
	}
	if !e.pins.take() {
		return nil, fmt.Errorf("shard %+q: %w", record.ID, messages.ErrUnknownShard)
	}
	l := &ReadLease{g: g, e: e, Handle: e.handle, Shard: e.shard}
	if g.onAcquire != nil {
		g.onAcquire()
	}
	if revoke != nil {
		e.holderSet().Add(l, revoke)
	}
	return l, nil
}

// Check compares a caller's record with the table's and returns the live
// shard. A record whose generation is not live is messages.ErrUnknownShard;
// one of a live generation that differs is a *messages.IntegrityError.
func (g *GPURef) Check(record sealer.Shard) (rehash.Shard, error) {
	e, err := g.lookup(record.ID, func(e *entry) (*entry, error) { return checkEntry(e, record, g.index) })
	if err != nil {
		return rehash.Shard{}, err
	}
	return e.shard, nil
}

// Record returns the signed record of the live shard id, from the actor's
// index, without a message; messages.ErrUnknownShard if there is none.
func (g *GPURef) Record(id string) (sealer.Shard, error) {
	e, err := g.lookup(id, func(e *entry) (*entry, error) {
		if e == nil {
			return nil, fmt.Errorf("shard %+q: %w", id, messages.ErrUnknownShard)
		}
		return e, nil
	})
	if err != nil {
		return sealer.Shard{}, err
	}
	return e.shard.Record, nil
}

// lookup finds the live entry with the ID in the actor's index, without a
// message, and checks it with check (which gets nil if there is none).
func (g *GPURef) lookup(id string, check func(*entry) (*entry, error)) (*entry, error) {
	select {
	case <-g.stopped:
		return nil, g.stoppedErr()
	default:
	}
	return check(g.live.get(id))
}

// Release checks a caller's record (as Check) and frees the shard once its
// leases end, in one step. If ctx ends first, the shard stays live and
// Release returns an error wrapping messages.ErrLeaseHeld.
func (g *GPURef) Release(ctx context.Context, record sealer.Shard) (Freed, error) {
	w := newFreeWaiter()
	freed, err := g.waitFree(ctx, &release{record: record, waiter: w}, w)
	if len(freed) == 0 {
		return Freed{}, err
	}
	return freed[0], err
}

// Drain takes back everything on the device: live shards are freed and
// pending seals revoked with cause (their calls fail with an error wrapping
// messages.ErrRevoked and cause), each once its leases end. It returns what
// was freed. If ctx ends first it returns what was freed so far and an
// error wrapping messages.ErrLeaseHeld; the rest are freed when their
// leases end, and TakeOrphans hands them over.
func (g *GPURef) Drain(ctx context.Context, cause error) ([]Freed, error) {
	w := newFreeWaiter()
	return g.waitFree(ctx, &drain{cause: cause, waiter: w}, w)
}

func newFreeWaiter() *freeWaiter { return &freeWaiter{reply: make(chan freeReply, 1)} }

func (g *GPURef) waitFree(ctx context.Context, req gpuMessage, w *freeWaiter) ([]Freed, error) {
	select {
	case <-g.stopped:
		return nil, g.stoppedErr()
	default:
	}
	g.send(req)
	select {
	case r := <-w.reply:
		return r.freed, r.err
	case <-g.stopped:
		select {
		case r := <-w.reply:
			return r.freed, r.err
		default:
			return nil, g.stoppedErr()
		}
	case <-ctx.Done():
	}
	r, err := await(g, &withdraw{waiter: w, reply: make(chan freeReply, 1)})
	if err != nil {
		return nil, err
	}
	select {
	case done := <-w.reply: // answered before the withdrawal
		return done.freed, done.err
	default:
	}
	return r.freed, fmt.Errorf("device %d: %w: %w", g.index, messages.ErrLeaseHeld, context.Cause(ctx))
}

// TakeOrphans returns the frees of drained allocations whose drain had
// stopped waiting, once each.
func (g *GPURef) TakeOrphans() []Freed {
	r, err := ask(context.Background(), g, &takeOrphans{reply: make(chan []Freed, 1)})
	if err != nil {
		return nil
	}
	return r
}

// Capacity returns the device's accounting.
func (g *GPURef) Capacity(ctx context.Context) (messages.Capacity, error) {
	return ask(ctx, g, &capacityQuery{reply: make(chan messages.Capacity, 1)})
}

// Snapshot lists every live shard, sorted by ID.
func (g *GPURef) Snapshot(ctx context.Context) ([]ShardView, error) {
	return ask(ctx, g, &snapshot{reply: make(chan []ShardView, 1)})
}

// MarkVerified notes that the live shard rec names fully matched at the
// time given. It does not wait.
func (g *GPURef) MarkVerified(rec sealer.Shard, at time.Time) {
	g.send(&markVerified{id: rec.ID, gen: rec.Generation, at: at})
}

// Stop stops the actor and waits until it has stopped. It returns what the
// actor still held and freed on its way out (nothing after a full Drain),
// with the orphans it had not handed over, and how many allocations it
// left allocated because they were leased (after a panic, say): memory
// under a lease is never freed, and the process's exit reclaims it.
// Only the first call gets them.
func (g *GPURef) Stop() (freed []Freed, leased int) {
	g.stop()
	<-g.stopped
	g.mailbox.wait()
	select {
	case r := <-g.stopReply:
		return r.freed, r.leased
	default:
		return nil, 0
	}
}

// Stopped is closed once the actor has stopped.
func (g *GPURef) Stopped() <-chan struct{} { return g.stopped }

func (g *GPURef) stoppedErr() error { return fmt.Errorf("device %d: %w", g.index, messages.ErrStopped) }

// replyRequest is a request whose answer comes back on reply.
type replyRequest[T any] interface {
	gpuMessage
	replyChan() chan T
}

func (m *allocate) replyChan() chan leaseReply             { return m.reply }
func (m *place) replyChan() chan leaseReply                { return m.reply }
func (m *commit) replyChan() chan error                    { return m.reply }
func (m *abort) replyChan() chan error                     { return m.reply }
func (m *withdraw) replyChan() chan freeReply              { return m.reply }
func (m *takeOrphans) replyChan() chan []Freed             { return m.reply }
func (m *capacityQuery) replyChan() chan messages.Capacity { return m.reply }
func (m *snapshot) replyChan() chan []ShardView            { return m.reply }

// await sends a request that changes the table and waits for its answer,
// however long the caller's context.
func await[T any](g *GPURef, req replyRequest[T]) (T, error) {
	return ask(context.Background(), g, req)
}

// ask sends req and waits for its answer, the actor's stop, or ctx's end.
func ask[T any](ctx context.Context, g *GPURef, req replyRequest[T]) (T, error) {
	var zero T
	select {
	case <-g.stopped:
		return zero, g.stoppedErr()
	default:
	}
	g.send(req)
	select {
	case r := <-req.replyChan():
		return r, nil
	case <-g.stopped:
		// The actor may have answered just before it stopped.
		select {
		case r := <-req.replyChan():
			return r, nil
		default:
			return zero, g.stoppedErr()
		}
	case <-ctx.Done():
		return zero, context.Cause(ctx)
	}
}

var _ rehash.Memory = (*GPURef)(nil)
