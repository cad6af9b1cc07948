package cuda

import (
	"fmt"

	"github.com/vramseal/vramseal/messages"
)

var _ Sharer = (*Sim)(nil)

// Shareable reports whether the Sim was made with SimConfig.Shareable.
func (s *Sim) Shareable() bool { return s.shareable }

// Share returns a read-only descriptor of allocation h's memfd, for another
// process to map. It fails with messages.ErrInvalidInput unless the Sim
// was made with SimConfig.Shareable.
func (s *Sim) Share(h Handle) (Shared, error) {
	a, err := s.lookup("share", h, 0, 0)
	if err != nil {
		return Shared{}, err
	}
	var shared Shared
	err = a.Shared("sim", "share", h, func(m simMemory) error {
		if m.file == nil {
			return fmt.Errorf("sim: share handle %d: the Sim was not made shareable: %w", h, messages.ErrInvalidInput)
		}
		shared, err = shareMemfd(m)
		return err
	})
	return shared, err
}
