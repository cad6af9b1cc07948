package actors

import (
	"time"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/rehash"
	"github.com/vramseal/vramseal/sealer"
)

// gpuRequest is implemented by every message the GPU actor accepts, so a
// type switch over the wrong message set does not compile silently. Every
// message only reads or changes the allocation table; data is copied
// outside the mailbox, under the leases these messages grant.
type gpuRequest interface{ isGPURequest() }

// allocate reserves capacity for a pending seal and allocates its memory,
// with a write lease held.
type allocate struct {
	id    string
	gen   uint64
	size  int64
	reply chan leaseReply
}

// leaseReply answers a request for a lease.
type leaseReply struct {
	e      *entry
	handle cuda.Handle
	shard  rehash.Shard
	err    error
}

// lease takes another lease on an entry the caller already named: a seal's
// write lease on its pending allocation.
type lease struct {
	e     *entry
	reply chan leaseReply
}

// endLease ends one lease on an entry; holder is the embedder lease it
// ends, if it is one. It has no reply.
type endLease struct {
	e      *entry
	holder *ReadLease
}

// leaseRead grants a read lease on the live shard id of generation gen.
type leaseRead struct {
	id    string
	gen   uint64
	reply chan leaseReply
}

// acquire checks a caller's record against the table and grants a read
// lease on the shard it names, in one step. The lease is holder's; revoke,
// if set, is called (from the actor, so it must not block) when a drain
// dooms the shard.
type acquire struct {
	record sealer.Shard
	holder *ReadLease
	revoke func(cause error)
	reply  chan leaseReply
}

// check compares a caller's record with the table's.
type check struct {
	record sealer.Shard
	reply  chan leaseReply
}

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

func (*allocate) isGPURequest()      {}
func (*lease) isGPURequest()         {}
func (*endLease) isGPURequest()      {}
func (*leaseRead) isGPURequest()     {}
func (*acquire) isGPURequest()       {}
func (*check) isGPURequest()         {}
func (*commit) isGPURequest()        {}
func (*abort) isGPURequest()         {}
func (*release) isGPURequest()       {}
func (*drain) isGPURequest()         {}
func (*withdraw) isGPURequest()      {}
func (*takeOrphans) isGPURequest()   {}
func (*capacityQuery) isGPURequest() {}
func (*snapshot) isGPURequest()      {}
func (*markVerified) isGPURequest()  {}

// ShardView is a GPU actor's record of one live shard: what a snapshot
// lists.
type ShardView struct {
	rehash.Shard
	LastVerified time.Time
}
