package main

import (
	"fmt"
	"slices"
	"strings"
)

// choiceFlag is a flag that takes one of a fixed set of words, such as
// --backend auto|sim|cuda. A word outside the set is refused while the
// command line is parsed, with the set in the message.
type choiceFlag struct {
	value   string
	choices []string
}

// newChoiceFlag returns a flag holding def, which must be one of choices.
func newChoiceFlag(def string, choices ...string) *choiceFlag {
	return &choiceFlag{value: def, choices: choices}
}

// String is the current word.
func (c *choiceFlag) String() string { return c.value }

// Set accepts one of the choices.
func (c *choiceFlag) Set(s string) error {
	if !slices.Contains(c.choices, s) {
		return fmt.Errorf("%q is not one of %s", s, strings.Join(c.choices, ", "))
	}
	c.value = s
	return nil
}

// Type shows the choices in --help.
func (c *choiceFlag) Type() string { return strings.Join(c.choices, "|") }
