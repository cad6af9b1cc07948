package actors

import (
	"time"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/internal/rehash"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// gpuMessage is implemented by every message the GPU actor accepts, so a
// type switch over the wrong message set does not compile silently, and
// TestMessageSwitchesAreExhaustive checks that its Receive handles each.
// Every message only reads or changes the allocation table, save place,
// which copies one small seal's bytes; other data is copied outside the
// mailbox, under leases. Leases are taken and ended without a message
// (gpu_pins.go); the actor hears only of the last one to end on memory it
// is waiting to free.
type gpuMessage interface{ gpuMessage() }

// allocate reserves capacity for a pending seal and allocates its memory,
// with a write lease held.
type allocate struct {
	id    string
	gen   uint64
	size  int64
	reply chan leaseReply
}

// leaseReply answers a request for memory under a lease.
type leaseReply struct {
	e      *entry
	handle cuda.Handle
	err    error
}

// place seals a small shard in one turn: it allocates the memory its
// signed record names, copies data in and makes it live, with a lease
// held that carries the shard until its seal is recorded.
type place struct {
	record sealer.Shard
	chunks []sealer.ChunkDigest
	data   []byte
	reply  chan leaseReply
}

// leasesEnded says the last lease on a doomed entry ended, so it may be
// freed. It has no reply.
type leasesEnded struct{ e *entry }

// commit turns a pending seal into a live shard; the caller's write lease
// carries over to the live shard.
type commit struct {
	e      *entry
	record sealer.Shard
	chunks []sealer.ChunkDigest
	reply  chan error
}

// abort frees a seal that will not complete, pending or just committed.
type abort struct {
	e     *entry
	reply chan error
}

// release checks a caller's record and frees the live shard it names once
// its leases end.
type release struct {
	record sealer.Shard
	waiter *freeWaiter
}

// drain takes back every allocation on the device: live shards are freed
// and pending seals revoked with cause, each once its leases end.
type drain struct {
	cause  error
	waiter *freeWaiter
}

// withdraw says the caller of a release or drain no longer waits: it gets
// what was freed so far; a release's shard is live again if it was not
// freed yet, a drain's are freed later as orphans.
type withdraw struct {
	waiter *freeWaiter
	reply  chan freeReply
}

// takeOrphans hands over the frees no one waited for.
type takeOrphans struct{ reply chan []Freed }

// capacityQuery asks for the device's accounting.
type capacityQuery struct{ reply chan messages.Capacity }

// snapshot lists every live shard.
type snapshot struct{ reply chan []ShardView }

// markVerified notes that every chunk of a shard matched at a time.
type markVerified struct {
	id  string
	gen uint64
	at  time.Time
}

func (*allocate) gpuMessage()      {}
func (*place) gpuMessage()         {}
func (*leasesEnded) gpuMessage()   {}
func (*commit) gpuMessage()        {}
func (*abort) gpuMessage()         {}
func (*release) gpuMessage()       {}
func (*drain) gpuMessage()         {}
func (*withdraw) gpuMessage()      {}
func (*takeOrphans) gpuMessage()   {}
func (*capacityQuery) gpuMessage() {}
func (*snapshot) gpuMessage()      {}
func (*markVerified) gpuMessage()  {}

// ShardView is a GPU actor's record of one live shard: what a snapshot
// lists.
type ShardView struct {
	rehash.Shard
	LastVerified time.Time
}
