//go:build !linux

package cuda

import (
	"fmt"

	"github.com/vramseal/vramseal/messages"
)

// newMemfd fails: shareable Sim memory needs Linux's sealed memfds.
func newMemfd(size int64) (simMemory, error) {
	return simMemory{}, fmt.Errorf("sim: allocate %d shareable bytes: sealed memfds need Linux: %w", size, messages.ErrConfig)
}

func releaseMemfd(simMemory) {}

func shareMemfd(simMemory) (Shared, error) {
	return Shared{}, fmt.Errorf("sim: share: sealed memfds need Linux: %w", messages.ErrConfig)
}
