package messages

import (
	"errors"
	"fmt"

	"github.com/vramseal/vramseal/internal/units"
)

// The error kinds. Every layer wraps one of these with short context; callers
// match them with errors.Is. No message ever contains a key, token or device
// address.
var (
	// ErrInvalidInput means a request was malformed: a bad shard ID, size,
	// device index, chunk size or record. It is returned before any device work.
	ErrInvalidInput = errors.New("invalid input")

	// ErrInsufficientVRAM means the device has too little free memory for the
	// request. It is retriable: memory may be freed later.
	ErrInsufficientVRAM = errors.New("insufficient VRAM")

	// ErrAllocationFailed means the device refused an allocation for a reason
	// other than lack of memory. It is retriable.
	ErrAllocationFailed = errors.New("allocation failed")

	// ErrNotSealed means a shard record carries no signature.
	ErrNotSealed = errors.New("shard not sealed")

	// ErrSealVerificationFailed means a shard's signature, record or device
	// memory no longer matches what was sealed. It is fatal.
	ErrSealVerificationFailed = errors.New("seal verification failed")

	// ErrIntegrityViolation means a structure that must never change did, such
	// as the audit chain. It is fatal.
	ErrIntegrityViolation = errors.New("integrity violation")

	// ErrPolicyViolation means the environment breaks a security policy, such
	// as weights placed outside dedicated VRAM. It is fatal.
	ErrPolicyViolation = errors.New("policy violation")

	// ErrConfig means the runtime or a key was configured wrongly.
	ErrConfig = errors.New("invalid configuration")

	// ErrDeviceFault means the device failed: lost, unreadable, or reporting a
	// hardware error. It is fatal.
	ErrDeviceFault = errors.New("device fault")

	// ErrSoftwareFault means vramseal itself failed: one of its actors
	// panicked. It is a bug, not a device failure, and it is fatal.
	ErrSoftwareFault = errors.New("software fault")

	// ErrEvicted means the device's shards were evicted while the call was
	// in progress, for example because another process needed the GPU. It
	// does not stop the worker; the caller may seal again later.
	ErrEvicted = errors.New("evicted")

	// ErrRevoked means memory was taken back while in use: a seal's
	// memory by an eviction or a stop while the seal was in progress, or an
	// embedder's lease by an eviction, a stop or a fail-stop. The error
	// also wraps the cause (ErrEvicted, ErrStopped, or the fail-stop's), so
	// errors.Is matches both.
	ErrRevoked = errors.New("revoked")

	// ErrLeaseHeld means memory could not be freed in time because a lease
	// on it was still held.
	ErrLeaseHeld = errors.New("lease still held")

	// ErrUnknownShard means no live shard has the given ID.
	ErrUnknownShard = errors.New("unknown shard")

	// ErrDuplicateShard means a live shard already has the given ID.
	ErrDuplicateShard = errors.New("duplicate shard")

	// ErrModelRejected means a model file is not the published model: its
	// digest differs from a published digest list or signed manifest, or it
	// is not listed there. The seal is refused and its memory freed; it is
	// not a fault of the worker.
	ErrModelRejected = errors.New("not the published model")

	// ErrStopped means the runtime has stopped, or is stopping, and accepts no
	// more work.
	ErrStopped = errors.New("runtime stopped")
)

// IsRetriable reports whether err is worth retrying later: the device lacked
// memory or refused an allocation. A retriable error never stops the worker.
func IsRetriable(err error) bool {
	return errors.Is(err, ErrInsufficientVRAM) || errors.Is(err, ErrAllocationFailed)
}

// IsFatal reports whether err is an integrity, policy or device failure that
// must stop the worker.
func IsFatal(err error) bool {
	return errors.Is(err, ErrSealVerificationFailed) ||
		errors.Is(err, ErrIntegrityViolation) ||
		errors.Is(err, ErrPolicyViolation) ||
		errors.Is(err, ErrDeviceFault) ||
		errors.Is(err, ErrSoftwareFault)
}

// InsufficientVRAMError says how much memory a request needed and how much the
// device could offer. It matches ErrInsufficientVRAM with errors.Is.
type InsufficientVRAMError struct {
	Device    int
	Needed    int64
	Available int64
}

// Error gives both numbers in bytes and in human units.
func (e *InsufficientVRAMError) Error() string {
	return fmt.Sprintf("insufficient VRAM on device %d: needed %d bytes (%s), available %d bytes (%s)",
		e.Device, e.Needed, units.Bytes(e.Needed), e.Available, units.Bytes(e.Available))
}

// Is makes errors.Is(err, ErrInsufficientVRAM) true.
func (e *InsufficientVRAMError) Is(target error) bool { return target == ErrInsufficientVRAM }
