package cuda

import "errors"

// Errors that belong to the device boundary rather than to the shared
// vocabulary in package messages.
var (
	// ErrCopyFailed means a copy between host and device stopped part-way or
	// did not start. The allocation is still valid and can be freed; the copy
	// may be retried.
	ErrCopyFailed = errors.New("copy failed")

	// ErrNoDriver means no NVIDIA driver is installed or loaded on this machine:
	// libnvidia-ml.so.1 or libcuda.so.1 could not be loaded, or the kernel driver
	// is not running. It is not a device fault: callers that may run without a
	// GPU fall back to simulated devices and say so.
	ErrNoDriver = errors.New("NVIDIA driver not found")
)
