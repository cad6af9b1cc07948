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
		holder := "another process"
		if h := lockHolder(f); h != "" {
			holder += " (" + h + ")"
		}
		return fmt.Errorf("%w: audit log %s is in use: %s writes it; stop that process, or use another log file",
			messages.ErrConfig, f.Name(), holder)
	}
	if err != nil {
		return fmt.Errorf("audit: lock log %s: %w", f.Name(), err)
	}
	return nil
}
