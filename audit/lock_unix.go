//go:build unix

package audit

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/vramseal/vramseal/messages"
)

// lockFile takes an exclusive advisory lock on f, so that two writers never
// append to one log and break its chain. It is released when f is closed.
func lockFile(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("%w: audit log %s is open in another writer", messages.ErrConfig, f.Name())
	}
	if err != nil {
		return fmt.Errorf("audit: lock log %s: %w", f.Name(), err)
	}
	return nil
}
