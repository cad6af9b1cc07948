package supervisor

import (
	"context"
	"fmt"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
)

// Peer is another process a lease is granted to, as a Unix socket's peer
// credentials (SO_PEERCRED) name it: the lease server's clients.
type Peer struct {
	PID, UID, GID int
}

// ForPeer makes Acquire grant the lease to another process: Acquire makes a
// LeaseGranted record durable (the shard, the lease's ID, the peer) before
// it returns, and the lease is ended with End, which records how.
func ForPeer(p Peer) AcquireOption { return func(o *acquireOptions) { o.peer = &p } }

// LeaseEnd says how a peer's lease ended, in its LeaseEnded record.
type LeaseEnd string

const (
	// LeaseReleased: the peer released it.
	LeaseReleased LeaseEnd = "released"
	// LeaseDisconnected: the peer's connection closed while it was held.
	LeaseDisconnected LeaseEnd = "disconnected"
	// LeaseRevoked: the runtime revoked it (Lease.Err says why) and the
	// peer was told.
	LeaseRevoked LeaseEnd = "revoked"
	// LeaseDropped: the server dropped the peer's connection, which did not
	// keep up with what it was sent.
	LeaseDropped LeaseEnd = "dropped"
	// LeaseUnshared: the memory could not be shared with the peer, which
	// was never sent the lease (EndUnshared records why).
	LeaseUnshared LeaseEnd = "unshared"
)

// End ends a peer's lease: it makes a LeaseEnded record (the shard, the
// lease, the peer, how it ended and, if it was revoked, why) and then
// releases the lease, so that the record precedes any free of the memory.
// Only the first End of a lease records, and none after its Release; End
// of a lease granted without ForPeer just releases it. The lease is
// released even if the record fails, which End then returns.
func (l *Lease) End(how LeaseEnd) error { return l.end(how, l.Err()) }

// EndUnshared ends a peer's lease whose memory Share could not hand over,
// as End does, with cause (Share's error) as the record's cause.
func (l *Lease) EndUnshared(cause error) error { return l.end(LeaseUnshared, cause) }

// end is End with the record's cause, if any.
func (l *Lease) end(how LeaseEnd, cause error) error {
	if l.peer == nil || !l.closing.CompareAndSwap(false, true) || l.ended.Load() {
		l.Release()
		return nil
	}
	err := l.runtime.record(context.Background(), leaseEndedRecord(l, how, cause))
	l.Release()
	if err != nil {
		return fmt.Errorf("lease %d: %w", l.id, err)
	}
	return nil
}

// Share returns a descriptor of the leased memory for another process to
// map, read-only and without a copy, on a device made shareable (a Sim with
// SimConfig.Shareable, a GPU opened with cuda/driver's WithShareable); else
// ErrInvalidInput. It fails like View once the lease is revoked or
// released. The caller closes the descriptor; a mapping made of it outlives
// the lease, so the holder must stop using it when the lease ends.
func (l *Lease) Share() (cuda.Shared, error) {
	if err := l.usable(); err != nil {
		return cuda.Shared{}, err
	}
	d, ok := l.device.(cuda.Sharer)
	if !ok || !d.Shareable() {
		return cuda.Shared{}, fmt.Errorf("lease: device %d does not share memory with other processes: %w", l.shard.Device, ErrInvalidInput)
	}
	return d.Share(l.held.Handle)
}

// DeviceUUID is the UUID of the leased memory's device, where the backend
// knows it: another process finds the device by it.
func (l *Lease) DeviceUUID() string { return l.device.Properties().UUID }

// Peer is the process the lease was granted to (ForPeer), if any.
func (l *Lease) Peer() (Peer, bool) {
	if l.peer == nil {
		return Peer{}, false
	}
	return *l.peer, true
}

// leaseGrantedRecord is the record of a lease granted to a peer.
func leaseGrantedRecord(l *Lease, verified bool) audit.Record {
	f := leaseFields(l)
	f["verified"] = verified
	return audit.Record{Event: audit.EventLeaseGranted, Severity: audit.SeverityInfo, Fields: f}
}

// leaseEndedRecord is the record of a peer's lease ending, and why, if
// cause is set.
func leaseEndedRecord(l *Lease, how LeaseEnd, cause error) audit.Record {
	f := leaseFields(l)
	f["ended"] = string(how)
	if cause != nil {
		f["cause"] = cause.Error()
	}
	return audit.Record{Event: audit.EventLeaseEnded, Severity: audit.SeverityInfo, Fields: f}
}

// leaseFields name a peer's lease: the shard, the lease and the peer.
func leaseFields(l *Lease) map[string]any {
	return map[string]any{
		"shard_id": l.shard.ID, "device": l.shard.Device, "lease": l.id,
		"peer_pid": l.peer.PID, "peer_uid": l.peer.UID, "peer_gid": l.peer.GID,
	}
}
