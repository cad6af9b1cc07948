package messages

import (
	"fmt"

	"github.com/vramseal/vramseal/internal/untrusted"
)

// RejectedError says that a file is not the published model: the digest an
// expectation names differs from the one computed while sealing. It matches
// ErrModelRejected with errors.Is.
type RejectedError struct {
	File     string // the file as the expectation names it
	Source   string // where the expectation comes from
	Expected string // hex SHA-256 expected
	Actual   string // hex SHA-256 computed
	// Start and End bound the byte range whose digest differs; both are 0
	// for the whole file.
	Start, End int64
}

// Error names file, source and both digests, and the range if there is one.
func (e *RejectedError) Error() string {
	what := "its SHA-256"
	if e.End > 0 {
		what = fmt.Sprintf("bytes [%d, %d)", e.Start, e.End)
	}
	return fmt.Sprintf("%v: %s: %s is %s, but %s expects %s", ErrModelRejected, untrusted.Quote(e.File), what, e.Actual, e.Source, e.Expected)
}

// Is makes errors.Is(err, ErrModelRejected) true.
func (e *RejectedError) Is(target error) bool { return target == ErrModelRejected }
