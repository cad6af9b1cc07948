package main

import (
	"errors"
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
// ("invalid input: chunk size ...") or a suffix ("...: invalid input").
func userMessage(err error) string {
	msg := err.Error()
	for _, kind := range classifyingKinds {
		if !errors.Is(err, kind) {
			continue
		}
		text := kind.Error()
		switch {
		case strings.Contains(msg, text+": "):
			msg = strings.Replace(msg, text+": ", "", 1)
		case strings.HasSuffix(msg, ": "+text):
			msg = strings.TrimSuffix(msg, ": "+text)
		}
	}
	return msg
}
