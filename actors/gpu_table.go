package actors

import (
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/internal/rehash"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// entryState is where an allocation is in its life.
type entryState int

const (
	// statePending: a seal is writing it; not yet visible.
	statePending entryState = iota + 1
	// stateLive: sealed and visible.
	stateLive
	// stateDoomed: taken out of the table, to be freed once its leases end.
	stateDoomed
)

// entry is one allocation in a GPU actor's table: a seal in progress or a
// sealed shard, and the leases held on it.
type entry struct {
	id     string
	gen    uint64
	size   int64
	handle cuda.Handle
	state  entryState
	// shard is the signed record and chunk digests, set at commit, before
	// the entry is published in the live index; never changed after.
	shard        rehash.Shard
	lastVerified time.Time
	// pins counts the leases held; memory under a lease is never freed.
	// The entry is closed while doomed.
	pins pins
	// holders are the embedder leases held, each with how to revoke it: a
	// drain revokes them once it has closed the entry, so no lease granted
	// before the drain is missed.
	holders atomic.Pointer[HolderSet[*ReadLease]]
	// waiters, once doomed, hear when the entry is freed; the first of them
	// gets its Freed to record. With none left, a drained entry's free is
	// kept in the actor's orphans.
	waiters []*freeWaiter
	// revokedBy is why a doomed pending seal was taken back: set by the
	// actor before it closes the entry, read once the entry is closed.
	revokedBy error
	// drained marks an entry a drain took: it is freed whoever still
	// waits, never put back.
	drained bool
	// aborted marks an entry its seal aborted: the seal records it, so its
	// free goes to no waiter.
	aborted bool
}

// Freed is an allocation a GPU actor freed: a sealed shard's record, or a
// seal in progress that was taken back (Pending, with ID and Size only).
type Freed struct {
	Shard   sealer.Shard
	Pending bool
}

// freeWaiter collects the frees one request asked for, and replies once
// the last of them is done.
type freeWaiter struct {
	left  int
	freed []Freed
	err   error
	// undoom, for a release, puts the entry back instead of leaving it
	// doomed when the caller stops waiting, unless a drain took it since.
	undoom bool
	reply  chan freeReply
}

type freeReply struct {
	freed []Freed
	err   error
}

// holderSet is e's embedder leases, made on first use: most shards are
// never leased, and a HolderSet is a few kilobytes.
func (e *entry) holderSet() *HolderSet[*ReadLease] {
	if h := e.holders.Load(); h != nil {
		return h
	}
	e.holders.CompareAndSwap(nil, new(HolderSet[*ReadLease]))
	return e.holders.Load()
}

// revoked is the error for a call on a doomed entry: ErrRevoked with its
// cause if a drain took back the seal in progress, else ErrUnknownShard.
func (e *entry) revoked() error {
	if e.revokedBy != nil {
		return fmt.Errorf("shard %+q: %w: %w", e.id, messages.ErrRevoked, e.revokedBy)
	}
	return fmt.Errorf("shard %+q: %w", e.id, messages.ErrUnknownShard)
}

// removeWaiter takes w off e's waiters, and reports whether it was there.
func (e *entry) removeWaiter(w *freeWaiter) bool {
	i := slices.Index(e.waiters, w)
	if i < 0 {
		return false
	}
	e.waiters = slices.Delete(e.waiters, i, i+1)
	return true
}

// table is a GPU actor's state: every allocation it holds, by shard ID
// while pending or live, and the doomed ones waiting for their leases.
type table struct {
	byID map[string]*entry
	// live is the live entries of byID, for lookups outside the actor.
	live   *liveIndex
	doomed map[*entry]struct{}
	// orphans are frees no one waited for any more, until TakeOrphans
	// hands them over to be recorded.
	orphans []Freed
	held    int64 // bytes of live and doomed allocations that were sealed
	staged  int64 // bytes of seals in progress (pending, or doomed before commit)
}

func newTable(live *liveIndex) *table {
	return &table{byID: map[string]*entry{}, live: live, doomed: map[*entry]struct{}{}}
}

// freedOf says what freeing e frees.
func freedOf(e *entry) Freed {
	if e.shard.Record.Signed() {
		return Freed{Shard: e.shard.Record}
	}
	return Freed{Shard: sealer.Shard{ID: e.id, Size: e.size, Generation: e.gen}, Pending: true}
}
