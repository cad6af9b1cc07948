package cuda

import "errors"

// Errors that belong to the device boundary rather than to the shared
// vocabulary in package messages.
var (
	// ErrCopyFailed means a copy between host and device stopped part-way or
	// did not start. The allocation is still valid and can be freed; the copy
	// may be retried.
	ErrCopyFailed = errors.New("copy failed")
)
