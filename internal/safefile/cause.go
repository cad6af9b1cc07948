package safefile

import (
	"errors"
	"io/fs"
)

// Cause is err without the operation and path an *fs.PathError adds, for
// messages that name the file themselves ("token file X cannot be read
// (permission denied)").
func Cause(err error) error {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err
	}
	return err
}
