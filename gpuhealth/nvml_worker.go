package gpuhealth

import (
	"context"
	"fmt"
	"sync"

	"github.com/vramseal/vramseal/messages"
)

// nvmlWorker is the life of one owned goroutine behind an NVML watcher: it
// starts once, runs until its context ends or stop is called, and stop waits
// for it.
type nvmlWorker struct {
	what string

	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// newNVMLWorker returns a worker; what names it in errors.
func newNVMLWorker(what string) nvmlWorker {
	return nvmlWorker{what: what, done: make(chan struct{})}
}

// start calls prepare and, if it succeeds, runs the function it returns on a
// new goroutine with a context derived from ctx. Starting twice fails with
// messages.ErrInvalidInput, after stop with messages.ErrStopped.
func (w *nvmlWorker) start(ctx context.Context, prepare func() (func(context.Context), error)) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return fmt.Errorf("%s: %w", w.what, messages.ErrStopped)
	}
	if w.started {
		return fmt.Errorf("%w: %s already started", messages.ErrInvalidInput, w.what)
	}
	run, err := prepare()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	w.started, w.cancel = true, cancel
	go func() {
		defer close(w.done)
		run(ctx)
	}()
	return nil
}

// stop cancels the goroutine and waits for it. It reports whether this call
// stopped a goroutine that had started; later calls report false.
func (w *nvmlWorker) stop() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return false
	}
	w.stopped = true
	if !w.started {
		close(w.done)
		return false
	}
	w.cancel()
	<-w.done
	return true
}

// doneChan is closed when the goroutine has ended, or at stop if it never
// started.
func (w *nvmlWorker) doneChan() <-chan struct{} { return w.done }
