package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// notifySignals returns ctx, cancelled by the first SIGINT or SIGTERM so
// that a worker stops gracefully, and stop, which stops listening. A second
// signal calls exit at once with 128 plus its number (130 for SIGINT, 143
// for SIGTERM), as a shell reports a process the signal killed: an operator
// whose graceful stop hangs needs no SIGKILL.
func notifySignals(parent context.Context, exit func(code int)) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { handleSignals(sigs, done, cancel, exit) })
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		wg.Wait()
		cancel()
	}
}

// handleSignals cancels on the first signal from sigs and exits on the
// second, until done closes.
func handleSignals(sigs <-chan os.Signal, done <-chan struct{}, cancel func(), exit func(code int)) {
	select {
	case <-sigs:
		cancel()
	case <-done:
		return
	}
	select {
	case sig := <-sigs:
		code := 128 + 2 // SIGINT's number, for a signal that has none
		if s, ok := sig.(syscall.Signal); ok {
			code = 128 + int(s)
		}
		exit(code)
	case <-done:
	}
}

// exitAtOnce is the exit of a second signal: one line on stderr, then the
// process ends without waiting for the graceful stop.
func exitAtOnce(stderr io.Writer) func(code int) {
	return func(code int) {
		fmt.Fprintf(stderr, "vramseal: second signal: exiting at once (exit %d) without waiting for the graceful stop\n", code)
		os.Exit(code)
	}
}
