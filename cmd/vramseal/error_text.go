package main

import (
	"strings"

	"github.com/vramseal/vramseal/messages"
)

// classifyingKinds are the error kinds whose text only classifies: code
// matches them with errors.Is, but "invalid input" or "invalid
// configuration" tells a person nothing the rest of the message does not.
// Kinds that do tell (seal verification failed, device fault, insufficient
// VRAM, ...) stay in the text.
var classifyingKinds = []error{messages.ErrInvalidInput, messages.ErrConfig}

// userMessage renders err for the person who ran the command: its text
// without the classifying kinds that wrapping left in it, as a prefix
// ("invalid input: chunk size ...") or a suffix ("...: invalid input") of
// the message of the error that wraps the kind. Only that place is cut: the
// same words elsewhere, in a path say, stay.
func userMessage(err error) string {
	msg := err.Error()
	for _, kind := range classifyingKinds {
		w := wrapperOf(err, kind)
		if w == nil {
			continue
		}
		wrapped, text := w.Error(), kind.Error()
		var kept string
		switch {
		case strings.HasPrefix(wrapped, text+": "):
			kept = wrapped[len(text+": "):]
		case strings.HasSuffix(wrapped, ": "+text):
			kept = strings.TrimSuffix(wrapped, ": "+text)
		default:
			continue
		}
		// Outer wrappers add their context around the wrapper's text,
		// usually before it: its last occurrence is the wrapper's own.
		if at := strings.LastIndex(msg, wrapped); at >= 0 {
			msg = msg[:at] + kept + msg[at+len(wrapped):]
		}
	}
	return msg
}

// wrapperOf is the first error in err's tree that wraps kind itself, or nil.
func wrapperOf(err, kind error) error {
	var next []error
	switch e := err.(type) {
	case interface{ Unwrap() error }:
		next = []error{e.Unwrap()}
	case interface{ Unwrap() []error }:
		next = e.Unwrap()
	}
	for _, n := range next {
		if n == kind {
			return err
		}
	}
	for _, n := range next {
		if n != nil {
			if w := wrapperOf(n, kind); w != nil {
				return w
			}
		}
	}
	return nil
}
