package supervisor

import (
	"fmt"
	"sync"

	"github.com/vramseal/vramseal/messages"
)

// idRegistry makes shard IDs unique across devices. It is an index of names,
// not device state: each GPU actor still owns its own table. A sync.Map
// keeps thousands of concurrent seals from queueing on one lock.
type idRegistry struct {
	ids sync.Map // shard ID -> struct{}
}

func newIDRegistry() *idRegistry { return &idRegistry{} }

// claim reserves id, or fails with ErrDuplicateShard if it is taken.
func (r *idRegistry) claim(id string) error {
	if _, taken := r.ids.LoadOrStore(id, struct{}{}); taken {
		return fmt.Errorf("shard %q: %w", id, messages.ErrDuplicateShard)
	}
	return nil
}

// drop frees id for reuse.
func (r *idRegistry) drop(id string) { r.ids.Delete(id) }
