package actors

import (
	"hash/maphash"
	"sync"
)

// holderStripes is how many locks a HolderSet spreads its holders over,
// so that a thousand callers taking and ending leases at once seldom meet
// on one lock (one lock made a lease's p99 milliseconds on two cores).
const holderStripes = 64

// HolderSet is a set of lease holders, each with how to revoke it, that
// can revoke them all at once: the embedder leases on one shard (revoked by
// a drain of its device) or in one runtime (revoked by a stop). A holder
// added after RevokeAll is revoked as it is added. It is safe for
// concurrent use; the zero value is empty.
type HolderSet[K comparable] struct {
	seed    maphash.Seed
	once    sync.Once
	stripes [holderStripes]holderStripe[K]
}

type holderStripe[K comparable] struct {
	mu      sync.Mutex
	revokes map[K]func(cause error)
	cause   error // set by RevokeAll
}

func (h *HolderSet[K]) stripe(k K) *holderStripe[K] {
	h.once.Do(func() { h.seed = maphash.MakeSeed() })
	return &h.stripes[maphash.Comparable(h.seed, k)%holderStripes]
}

// Add adds k, or revokes it at once if RevokeAll was called. revoke must
// not block.
func (h *HolderSet[K]) Add(k K, revoke func(cause error)) {
	s := h.stripe(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cause != nil {
		revoke(s.cause)
		return
	}
	if s.revokes == nil {
		s.revokes = map[K]func(error){}
	}
	s.revokes[k] = revoke
}

// Remove takes k out, if it is in.
func (h *HolderSet[K]) Remove(k K) {
	s := h.stripe(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.revokes, k)
}

// Len is how many holders are in the set.
func (h *HolderSet[K]) Len() int {
	n := 0
	for i := range h.stripes {
		s := &h.stripes[i]
		s.mu.Lock()
		n += len(s.revokes)
		s.mu.Unlock()
	}
	return n
}

// RevokeAll revokes every holder with cause, and any added later; they
// stay in the set until removed. The revocations must not block.
func (h *HolderSet[K]) RevokeAll(cause error) {
	for i := range h.stripes {
		s := &h.stripes[i]
		s.mu.Lock()
		s.cause = cause
		for _, revoke := range s.revokes {
			revoke(cause)
		}
		s.mu.Unlock()
	}
}
