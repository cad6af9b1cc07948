package supervisor

import (
	"fmt"
	"sync"

	"github.com/vramseal/vramseal/messages"
)

// idRegistry makes shard IDs unique across devices. It is an index of names,
// not device state: each GPU actor still owns its own table.
type idRegistry struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

func newIDRegistry() *idRegistry { return &idRegistry{ids: map[string]struct{}{}} }

// claim reserves id, or fails with ErrDuplicateShard if it is taken.
func (r *idRegistry) claim(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.ids[id]; ok {
		return fmt.Errorf("shard %q: %w", id, messages.ErrDuplicateShard)
	}
	r.ids[id] = struct{}{}
	return nil
}

// drop frees id for reuse.
func (r *idRegistry) drop(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.ids, id)
}
