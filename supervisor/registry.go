package supervisor

import (
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/vramseal/vramseal/messages"
)

// idStripes is how many locks the registry spreads its IDs over, so that
// thousands of concurrent seals seldom meet on one. (A sync.Map, before it,
// allocated a trie node per ID: 6% of the CPU of a run of small seals.)
const idStripes = 64

// idRegistry makes shard IDs unique across devices. It is an index of names,
// not device state: each GPU actor still owns its own table.
type idRegistry struct {
	seed    maphash.Seed
	stripes [idStripes]idStripe
}

type idStripe struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

func newIDRegistry() *idRegistry {
	r := &idRegistry{seed: maphash.MakeSeed()}
	for i := range r.stripes {
		r.stripes[i].ids = map[string]struct{}{}
	}
	return r
}

func (r *idRegistry) stripe(id string) *idStripe {
	return &r.stripes[maphash.String(r.seed, id)%idStripes]
}

// claim reserves id, or fails with ErrDuplicateShard if it is taken.
func (r *idRegistry) claim(id string) error {
	s := r.stripe(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.ids)
	s.ids[id] = struct{}{} // one hash of id, not a lookup and an insert
	if len(s.ids) == n {
		return fmt.Errorf("shard %q: %w", id, messages.ErrDuplicateShard)
	}
	return nil
}

// drop frees id for reuse.
func (r *idRegistry) drop(id string) {
	s := r.stripe(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.ids, id)
}
