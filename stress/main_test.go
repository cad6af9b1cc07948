package stress

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// runtimes the harness starts, its checkers and its heap sampler.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
