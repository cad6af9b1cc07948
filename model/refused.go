package model

import (
	"errors"

	"github.com/vramseal/vramseal/messages"
)

// RefusedError is a model refused before anything is sealed because files
// are not as its identity says: unlisted, not covered by the signature,
// missing, or a symbolic link. It matches messages.ErrModelRejected, and
// names the files so that the audit record can too.
type RefusedError struct {
	// Files are the files at fault, as the message names them.
	Files []string
	// Source is what says so: a list, --expect-sha256, the signature.
	Source string
	// Problem is the message, after "not the published model: ".
	Problem string
}

// Error is "not the published model: PROBLEM".
func (e *RefusedError) Error() string { return messages.ErrModelRejected.Error() + ": " + e.Problem }

// Is makes errors.Is(err, messages.ErrModelRejected) true.
func (e *RefusedError) Is(target error) bool { return target == messages.ErrModelRejected }

// RefusedFiles returns the files a refusal of the model names, and what
// refused them: those of a *RefusedError, or the file of a
// *messages.RejectedError (a digest that differs). It returns nil for any
// other error.
func RefusedFiles(err error) (files []string, source string) {
	var ref *RefusedError
	if errors.As(err, &ref) {
		return ref.Files, ref.Source
	}
	var rej *messages.RejectedError
	if errors.As(err, &rej) {
		return []string{rej.File}, rej.Source
	}
	return nil, ""
}
