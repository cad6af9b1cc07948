package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/vramseal/vramseal/actors"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/sealer"
)

// AcquireOption changes what Acquire does.
type AcquireOption func(*acquireOptions)

type acquireOptions struct {
	verified bool
	peer     *Peer
}

// Verified makes Acquire re-hash the shard before it returns the lease, so
// that "verify, then execute" is one call with no gap between the two.
func Verified() AcquireOption { return func(o *acquireOptions) { o.verified = true } }

// Lease is an embedder's hold on a live shard's device memory, for inference
// code to use: while it is held the memory is never freed (Free, Evict
// and Stop wait for it) and the background scrub keeps verifying it. The
// memory's address is for kernels only: never log it or put it in an error.
type Lease struct {
	id      uint64
	runtime *Runtime
	peer    *Peer
	device  cuda.Device
	set     *leaseSet
	held    *actors.ReadLease
	shard   sealer.Shard
	revoked chan struct{}
	once    sync.Once
	cause   atomic.Pointer[error]
	ended   atomic.Bool
	closing atomic.Bool // End has begun
}

// Acquire checks a caller's record (signature, live generation, the GPU
// actor's record, as Verify does) and returns a lease on the shard's
// memory. With Verified, it also re-hashes the shard, under the lease,
// before returning; a mismatch fail-stops the worker as in Verify.
func (r *Runtime) Acquire(ctx context.Context, shard Shard, opts ...AcquireOption) (*Lease, error) {
	var o acquireOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer r.calls.leave()
	if err := r.checkSigned(shard); err != nil {
		return nil, fmt.Errorf("acquire: %w", err)
	}
	l := &Lease{
		id: r.leaseIDs.Add(1), runtime: r, peer: o.peer,
		device: r.gpus[shard.Device].Device(), set: r.leases, shard: shard, revoked: make(chan struct{}),
	}
	// The GPU actor revokes the lease when an eviction or stop takes the
	// shard, in the message that takes it: no race with Evict can leave a
	// lease standing on memory it is waiting to free.
	held, err := r.gpus[shard.Device].Acquire(shard, func(cause error) {
		l.revoke(fmt.Errorf("device %d: %w", shard.Device, cause))
	})
	if err := r.tableRefused(err); err != nil {
		return nil, fmt.Errorf("acquire: %w", err)
	}
	l.held = held
	r.leases.add(l)
	if o.verified {
		ctx, cancel := r.untilStopping(ctx)
		defer cancel()
		err := r.rehash(ctx, held.Shard)
		if err == nil {
			err = r.markVerified(ctx, shard, "acquire")
		}
		if err != nil {
			l.Release()
			return nil, fmt.Errorf("acquire: %w", err)
		}
	}
	if o.peer != nil {
		if err := r.record(ctx, leaseGrantedRecord(l, o.verified)); err != nil {
			l.Release()
			return nil, fmt.Errorf("acquire: %w", err)
		}
	}
	return l, nil
}

// ID names the lease, uniquely within its runtime; it is never 0.
func (l *Lease) ID() uint64 { return l.id }

// Lookup returns the signed record of the live shard with the ID, for
// callers that know a shard by name (such as the lease server's clients);
// ErrUnknownShard if no device has it.
func (r *Runtime) Lookup(id string) (Shard, error) {
	if err := r.enter(); err != nil {
		return Shard{}, err
	}
	defer r.calls.leave()
	for _, g := range r.gpus {
		rec, err := g.Record(id)
		if err == nil {
			rec.Tensors = sealer.CloneTensors(rec.Tensors) // the caller's to change
			return rec, nil
		}
		if !errors.Is(err, ErrUnknownShard) {
			return Shard{}, fmt.Errorf("lookup: %w", err)
		}
	}
	return Shard{}, fmt.Errorf("lookup %+q: %w", id, ErrUnknownShard)
}

// Shard is the record of the leased shard.
func (l *Lease) Shard() Shard { return l.shard }

// Size is the leased memory's size in bytes.
func (l *Lease) Size() int64 { return l.shard.Size }

// DevicePointer is the leased memory's device address (a CUdeviceptr), for
// kernels on the CUDA backend. Once the lease is revoked it fails with Err
// (ErrRevoked and the cause), on every backend; after Release with
// ErrInvalidInput; on a backend without device addresses (the Sim) with
// ErrInvalidInput. An address taken earlier stays valid only until the
// lease is released: stop using it when Revoked closes.
func (l *Lease) DevicePointer() (uintptr, error) {
	if err := l.usable(); err != nil {
		return 0, err
	}
	d, ok := l.device.(cuda.Pointers)
	if !ok {
		return 0, fmt.Errorf("lease: device %d has no device addresses: %w", l.shard.Device, ErrInvalidInput)
	}
	return d.DevicePointer(l.held.Handle)
}

// View is a read-only view of the leased memory, on backends that keep it
// in host memory (the Sim, for tests and stand-in kernels); elsewhere it
// fails with ErrInvalidInput. It fails like DevicePointer once the lease
// is revoked or released, and so does every read through a View taken
// earlier.
func (l *Lease) View() (*View, error) {
	if err := l.usable(); err != nil {
		return nil, err
	}
	d, ok := l.device.(cuda.Viewer)
	if !ok {
		return nil, fmt.Errorf("lease: device %d has no host view: %w", l.shard.Device, ErrInvalidInput)
	}
	v, err := d.View(l.held.Handle)
	if err != nil {
		return nil, err
	}
	return v.Until(l.usable), nil
}

// usable is nil while the lease stands: else its revocation, or that it
// was released.
func (l *Lease) usable() error {
	if err := l.Err(); err != nil {
		return err
	}
	if l.ended.Load() {
		return fmt.Errorf("lease on %+q: released: %w", l.shard.ID, ErrInvalidInput)
	}
	return nil
}

// Revoked is closed once the lease is revoked: by a fail-stop, an Evict of
// its device or Stop. Inference code should then stop using the memory and
// Release the lease (the memory is freed only then); Err says why.
func (l *Lease) Revoked() <-chan struct{} { return l.revoked }

// Err is nil while the lease stands. Once it is revoked, it is an error
// that matches ErrRevoked and also the cause: ErrEvicted (Evict),
// ErrStopped (Stop), or the fail-stop's cause (an *IntegrityError matching
// ErrSealVerificationFailed, ErrDeviceFault, ...). Release does not change
// it.
func (l *Lease) Err() error {
	if p := l.cause.Load(); p != nil {
		return *p
	}
	return nil
}

// Release ends the lease; the memory may then be freed. It is idempotent.
func (l *Lease) Release() {
	if l.ended.CompareAndSwap(false, true) {
		// Out of the set first: once the memory may be freed, Stop must
		// no longer count the lease as held.
		l.set.remove(l)
		l.held.End()
	}
}

// revoke closes Revoked with an error wrapping ErrRevoked and cause, once.
func (l *Lease) revoke(cause error) {
	l.once.Do(func() {
		err := fmt.Errorf("lease on %+q: %w: %w", l.shard.ID, ErrRevoked, cause)
		l.cause.Store(&err)
		close(l.revoked)
	})
}

// leaseSet is every embedder lease held, so that a stop can revoke them at
// once and Stop can say how many are left. (An eviction's revocation comes
// from the GPU actor.)
type leaseSet struct{ actors.HolderSet[*Lease] }

func newLeaseSet() *leaseSet { return &leaseSet{} }

func (s *leaseSet) add(l *Lease) { s.Add(l, l.revoke) }

func (s *leaseSet) remove(l *Lease) { s.Remove(l) }

func (s *leaseSet) count() int { return s.Len() }

// revokeAll revokes every lease with cause, and every lease added later.
func (s *leaseSet) revokeAll(cause error) { s.RevokeAll(cause) }
