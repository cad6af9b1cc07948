package actors

import (
	"time"

	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// gpuRequest is implemented by every message the GPU actor accepts, so a
// type switch over the wrong message set does not compile silently.
type gpuRequest interface{ isGPURequest() }

// ShardView is a GPU actor's record of one sealed shard. Chunks is shared and
// never modified after the seal; Gen tells a shard from a later one that
// reuses its ID.
type ShardView struct {
	Record       sealer.Shard
	Chunks       []sealer.ChunkDigest
	Gen          uint64
	LastVerified time.Time
}

// allocate reserves capacity for a pending seal, allocates its memory and
// copies first, if any, to its start.
type allocate struct {
	id    string
	size  int64
	first []byte
	reply chan error
}

// write copies one staged chunk into a pending seal's memory.
type write struct {
	id     string
	offset int64
	data   []byte
	reply  chan error
}

// commit turns a pending seal into a sealed shard.
type commit struct {
	record sealer.Shard
	chunks []sealer.ChunkDigest
	reply  chan error
}

// abort frees a pending seal.
type abort struct {
	id    string
	reply chan error
}

// read copies part of a sealed shard's memory into buf.
type read struct {
	id     string
	gen    uint64
	offset int64
	buf    []byte
	reply  chan error
}

// lookup fetches one sealed shard's view.
type lookup struct {
	id    string
	reply chan lookupReply
}

type lookupReply struct {
	view ShardView
	err  error
}

// release frees a sealed shard.
type release struct {
	id    string
	reply chan error
}

// capacityQuery asks for the device's accounting.
type capacityQuery struct{ reply chan messages.Capacity }

// snapshot lists every sealed shard.
type snapshot struct{ reply chan []ShardView }

// markVerified notes that every chunk of a shard matched at a time.
type markVerified struct {
	id  string
	gen uint64
	at  time.Time
}

// drain frees every shard and pending seal, and lists the shards freed.
type drain struct{ reply chan drainReply }

type drainReply struct {
	freed []sealer.Shard
	err   error
}

func (*allocate) isGPURequest()      {}
func (*write) isGPURequest()         {}
func (*commit) isGPURequest()        {}
func (*abort) isGPURequest()         {}
func (*read) isGPURequest()          {}
func (*lookup) isGPURequest()        {}
func (*release) isGPURequest()       {}
func (*capacityQuery) isGPURequest() {}
func (*snapshot) isGPURequest()      {}
func (*markVerified) isGPURequest()  {}
func (*drain) isGPURequest()         {}
