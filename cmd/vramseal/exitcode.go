package main

import (
	"errors"
	"fmt"
)

// Exit codes. Scripts and service managers rely on them; the README lists them.
const (
	// exitOK: the command did its work, or a worker stopped on a signal or
	// after --duration with its VRAM freed and its audit log closed.
	exitOK = 0
	// exitFailure: anything that is neither bad usage nor a fail-stop, such
	// as an I/O error, or an audit log that verify found tampered with.
	exitFailure = 1
	// exitUsage: bad usage or configuration, found before anything was sealed.
	exitUsage = 2
	// exitFailStop: the worker fail-stopped on an integrity or device failure.
	exitFailStop = 3
	// exitModelRejected: a model file is not the published model: its digest
	// differs from --sha256sums, --expect-sha256 or --signature, the
	// signature does not verify, or a file is unlisted. Its seal was refused
	// and its memory freed.
	exitModelRejected = 4
	// exitWrongKey: "audit verify" was given another token or worker ID
	// than the ones that wrote the log, so it cannot tell whether the log
	// was tampered with.
	exitWrongKey = 5
	// exitHeadMismatch: "audit verify" found the log intact, but it does
	// not hold a head the worker published: it was cut before that head
	// (truncated) or rewritten from before it (diverged).
	exitHeadMismatch = 6
)

// exitError is an error that decides the process's exit code.
type exitError struct {
	code int
	err  error
}

// Error is the wrapped error's message.
func (e *exitError) Error() string { return e.err.Error() }

// Unwrap returns the wrapped error.
func (e *exitError) Unwrap() error { return e.err }

// withExitCode makes err end the process with code; nil stays nil.
func withExitCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// usageErrorf is a bad-usage error: the message names the problem and the fix.
func usageErrorf(format string, args ...any) error {
	return withExitCode(exitUsage, fmt.Errorf(format, args...))
}

// exitCodeOf is the exit code err asks for. An error without a code is a
// usage error when it came from the command line parser, before any command
// ran, and a plain failure otherwise.
func exitCodeOf(err error, commandRan bool) int {
	if err == nil {
		return exitOK
	}
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	if !commandRan {
		return exitUsage
	}
	return exitFailure
}
