package share

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

// ErrSocketInUse means another server is listening on the socket's path.
var ErrSocketInUse = errors.New("a lease server is already listening there")

// ListenSocket listens on a Unix stream socket at path, mode 0660, its
// directory made 0750 if missing. A socket left by a dead server is
// replaced; a live one (ErrSocketInUse), or a file that is not a socket, is
// refused. Config.Listener takes it, for a caller that takes the path
// before it has a runtime to serve.
func ListenSocket(path string) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("serve %s: %w", path, err)
	}
	if info, err := os.Lstat(path); err == nil {
		if info.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("serve %s: the path exists and is not a socket; remove it or choose another", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("serve %s: %w", path, ErrSocketInUse)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("serve %s: replace the stale socket: %w", path, err)
		}
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("serve %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("serve %s: %w", path, err)
	}
	return l, nil
}
