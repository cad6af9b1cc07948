package supervisor

import (
	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
)

// The error kinds a Runtime and its Leases return. Every error wraps one or
// more of them with short context; match them with errors.Is. No error ever
// contains a key, token or device address. They are the same values as the
// messages package's (and audit's ErrLogFailed), so errors.Is matches
// either name.
var (
	// ErrInvalidInput: a request was malformed (shard ID, size, device
	// index, chunk size, record); returned before any device work.
	ErrInvalidInput = messages.ErrInvalidInput
	// ErrInsufficientVRAM: the device has too little free memory; retriable.
	// The error is an *InsufficientVRAMError with both numbers.
	ErrInsufficientVRAM = messages.ErrInsufficientVRAM
	// ErrAllocationFailed: the device refused an allocation for another
	// reason than lack of memory; retriable.
	ErrAllocationFailed = messages.ErrAllocationFailed
	// ErrNotSealed: a shard record carries no signature.
	ErrNotSealed = messages.ErrNotSealed
	// ErrSealVerificationFailed: a shard's signature, record or device
	// memory no longer matches what was sealed; fatal. The error is an
	// *IntegrityError naming the shard, chunk and tensors.
	ErrSealVerificationFailed = messages.ErrSealVerificationFailed
	// ErrIntegrityViolation: a structure that must never change did, such
	// as the audit chain; fatal.
	ErrIntegrityViolation = messages.ErrIntegrityViolation
	// ErrPolicyViolation: the environment breaks a security policy, such as
	// weights placed outside dedicated VRAM; fatal.
	ErrPolicyViolation = messages.ErrPolicyViolation
	// ErrConfig: the runtime, its key or its token file is configured
	// wrongly; Start and Open return it before touching a device.
	ErrConfig = messages.ErrConfig
	// ErrDeviceFault: the device failed (lost, unreadable, a hardware
	// error); fatal.
	ErrDeviceFault = messages.ErrDeviceFault
	// ErrSoftwareFault: vramseal itself failed (a panic); fatal.
	ErrSoftwareFault = messages.ErrSoftwareFault
	// ErrEvicted: Evict took the device's shards; the worker keeps running.
	ErrEvicted = messages.ErrEvicted
	// ErrRevoked: the memory a lease or a seal worked on was taken back.
	// A revoked Lease's Err matches it and its cause: ErrEvicted,
	// ErrStopped, or the fail-stop's cause.
	ErrRevoked = messages.ErrRevoked
	// ErrLeaseHeld: memory could not be freed in time because a lease on
	// it was still held.
	ErrLeaseHeld = messages.ErrLeaseHeld
	// ErrUnknownShard: no live shard has the record's ID and generation.
	ErrUnknownShard = messages.ErrUnknownShard
	// ErrDuplicateShard: a live shard already has the ID.
	ErrDuplicateShard = messages.ErrDuplicateShard
	// ErrModelRejected: the data is not the published model (a SealCheck
	// refused it); the seal is refused, the worker keeps running. The error
	// is a *RejectedError.
	ErrModelRejected = messages.ErrModelRejected
	// ErrStopped: the runtime has stopped, or is stopping, and accepts no
	// more work.
	ErrStopped = messages.ErrStopped
	// ErrLogFailed: the audit log could no longer be written; fatal, and
	// the records since are lost.
	ErrLogFailed = audit.ErrLogFailed
)

// The error types behind some kinds, for errors.As.
type (
	// IntegrityError says what no longer matches in a sealed shard; it
	// matches ErrSealVerificationFailed.
	IntegrityError = messages.IntegrityError
	// InsufficientVRAMError says how much memory a seal needed and how
	// much the device had; it matches ErrInsufficientVRAM.
	InsufficientVRAMError = messages.InsufficientVRAMError
	// RejectedError says which file or range is not the published model;
	// it matches ErrModelRejected.
	RejectedError = messages.RejectedError
)

// IsRetriable reports whether err is worth retrying later (the device
// lacked memory or refused an allocation); such an error never stops the
// worker.
func IsRetriable(err error) bool { return messages.IsRetriable(err) }

// IsFatal reports whether err is an integrity, policy, device or software
// failure: one that stops the worker.
func IsFatal(err error) bool { return messages.IsFatal(err) }
