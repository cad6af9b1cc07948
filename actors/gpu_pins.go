package actors

import (
	"sync"
	"sync/atomic"
)

// pins counts the leases held on one allocation, taken and ended with
// atomics outside the GPU actor's mailbox, so that leasing never queues
// behind the actor. Only the actor closes an allocation (to free it) and
// reopens it; once closed, no lease can be taken, and the lease that ends
// last tells the actor, so the memory is freed exactly once, when no lease
// holds it.
type pins struct{ state atomic.Int64 }

// pinsClosed is the state's flag for a closed allocation; the bits below
// it count the leases held.
const pinsClosed = 1 << 62

// take adds a lease, unless the allocation is closed.
func (p *pins) take() bool {
	for {
		s := p.state.Load()
		if s&pinsClosed != 0 {
			return false
		}
		if p.state.CompareAndSwap(s, s+1) {
			return true
		}
	}
}

// drop ends a lease, and reports whether it was the last one held on a
// closed allocation: the caller must then tell the actor, which frees it.
func (p *pins) drop() (lastOfClosed bool) { return p.state.Add(-1) == pinsClosed }

// close refuses new leases on an open allocation, and reports whether none
// is held, so that it may be freed now. Only the actor calls it.
func (p *pins) close() (idle bool) { return p.state.Add(pinsClosed) == pinsClosed }

// reopen admits leases again on a closed allocation. Only the actor calls it.
func (p *pins) reopen() { p.state.Add(-pinsClosed) }

// held is how many leases are held.
func (p *pins) held() int64 { return p.state.Load() &^ pinsClosed }

// liveIndex is one device's live shards by ID, read without a message by
// the calls that check records and take leases; the GPU actor alone writes
// it, in the messages that commit, doom and restore shards. (A read-write
// lock over a plain map, not a sync.Map: every shard is written twice, on
// commit and on doom, and sync.Map's writes allocate; they took 7% of the
// CPU of a run of small seals.)
type liveIndex struct {
	mu   sync.RWMutex
	byID map[string]*entry
}

func newLiveIndex() *liveIndex { return &liveIndex{byID: map[string]*entry{}} }

// get returns the live entry with the ID, or nil.
func (x *liveIndex) get(id string) *entry {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.byID[id]
}

func (x *liveIndex) put(e *entry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.byID[e.id] = e
}

func (x *liveIndex) remove(e *entry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.byID[e.id] == e {
		delete(x.byID, e.id)
	}
}
