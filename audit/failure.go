package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/vramseal/vramseal/messages"
)

// ErrLogFailed means the log can no longer make records durable: a write or
// fsync failed, or its file was removed or replaced underneath it. A worker
// whose log failed must stop: nothing it does can be recorded any more.
var ErrLogFailed = errors.New("audit log failed")

// pathCheckInterval is how often an idle writer checks that its path still
// names its file; a busy one checks before every batch.
const pathCheckInterval = time.Second

// Failed is closed once the log has failed; Err says why. A runtime over
// the log fail-stops on it even when it has nothing to record.
func (l *Log) Failed() <-chan struct{} { return l.failedC }

// Err is nil while the log works, and the cause, wrapping ErrLogFailed, once
// it has failed.
func (l *Log) Err() error {
	if cause := l.failed.Load(); cause != nil {
		return *cause
	}
	return nil
}

// stoppedBy is the error of a Record on a log that failed earlier: it reads
// as the cause, and matches both the cause and messages.ErrStopped.
type stoppedBy struct{ cause error }

func (e stoppedBy) Error() string   { return e.cause.Error() }
func (e stoppedBy) Unwrap() []error { return []error{e.cause, messages.ErrStopped} }

// fail makes the log failed for good with cause, once. Only the writer
// goroutine (or Close, after it) calls it.
func (l *Log) fail(cause error) error {
	if !errors.Is(cause, ErrLogFailed) {
		cause = fmt.Errorf("%w: %w", ErrLogFailed, cause)
	}
	if l.failed.CompareAndSwap(nil, &cause) {
		close(l.failedC)
	}
	return *l.failed.Load()
}

// checkPath fails the log unless its path still names the file it writes:
// records appended to a file removed or replaced underneath would be
// acknowledged into a file no one will read.
func (l *Log) checkPath() error {
	info, err := os.Stat(l.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return l.fail(fmt.Errorf("%w: %s was removed while the worker wrote it", ErrLogFailed, l.path))
	case err != nil:
		return l.fail(fmt.Errorf("%w: check %s: %w", ErrLogFailed, l.path, err))
	case !os.SameFile(info, l.ident):
		return l.fail(fmt.Errorf("%w: %s was replaced by another file while the worker wrote it", ErrLogFailed, l.path))
	}
	return nil
}

// undoBatch cuts what a failed batch left at the end of the file, so that
// the log ends with its last durable record and no torn line, if the file
// still lets it.
func (l *Log) undoBatch() {
	if l.file.Truncate(l.size) == nil {
		_ = l.file.Sync() // best effort: the log has failed already
	}
}
