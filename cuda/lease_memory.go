package cuda

import (
	"fmt"
	"io"

	"github.com/vramseal/vramseal/messages"
)

// Pointers is an optional Device capability: the device address of an
// allocation, for inference code that runs kernels on leased memory. The
// address must never reach a log, an error, JSON or a metric.
type Pointers interface {
	// DevicePointer returns allocation h's device address (a CUdeviceptr).
	DevicePointer(h Handle) (uintptr, error)
}

// Viewer is an optional Device capability of backends whose memory lives
// in host memory (Sim): a read-only view of an allocation, for tests that
// stand in for kernels.
type Viewer interface {
	// View returns a read-only view of allocation h.
	View(h Handle) (*View, error)
}

// View is a read-only view of one allocation. It is valid while the memory
// is not freed: the caller's lease keeps it so.
type View struct {
	size   int64
	readAt func(p []byte, off int64) error
	// valid, if set, is checked before every read (see Until).
	valid func() error
}

// Until returns a view of the same memory whose every read first calls
// valid and fails with its error, if any: so a view handed out under a
// lease stops reading once the lease is revoked, whatever the backend.
func (v *View) Until(valid func() error) *View {
	earlier := v.valid
	return &View{size: v.size, readAt: v.readAt, valid: func() error {
		if earlier != nil {
			if err := earlier(); err != nil {
				return err
			}
		}
		return valid()
	}}
}

var _ io.ReaderAt = (*View)(nil)

// Size is the allocation's size in bytes.
func (v *View) Size() int64 { return v.size }

// ReadAt copies the allocation's bytes at off into p; it reads len(p)
// bytes or fails, with io.EOF past the end, or with valid's error (Until).
func (v *View) ReadAt(p []byte, off int64) (int, error) {
	if v.valid != nil {
		if err := v.valid(); err != nil {
			return 0, err
		}
	}
	if off < 0 {
		return 0, fmt.Errorf("view: negative offset %d: %w", off, messages.ErrInvalidInput)
	}
	if off >= v.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), v.size-off)
	if err := v.readAt(p[:n], off); err != nil {
		return 0, err
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}
