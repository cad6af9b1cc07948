// Package testwait bounds the waits of tests: each waits generously, so
// that only a regression reaches the bound, and then fails the test by
// name instead of timing out the whole package. It is for tests only.
package testwait

import (
	"testing"
	"time"
)

// Bound is how long a test waits for anything.
const Bound = 30 * time.Second

// Receive waits, up to Bound, for a value on ch, and fails the test, naming
// what it waited for, if none comes.
func Receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(Bound):
		t.Fatalf("%s: no %s within %v", t.Name(), what, Bound)
		panic("unreachable")
	}
}
