package messages

import "fmt"

// CatchPanic runs fn, one goroutine's work, and returns nil; if fn panics
// it returns an error wrapping ErrSoftwareFault that names what panicked,
// so that the goroutine's owner fail-stops the worker instead of the
// process crashing. The error carries the panic's value but never its
// stack, whose arguments may be device addresses.
func CatchPanic(what string, fn func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s panicked: %v: %w", what, p, ErrSoftwareFault)
		}
	}()
	fn()
	return nil
}
