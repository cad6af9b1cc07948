package sealer

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them, such as
// a Digester helper that Write did not join.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
