package gpuhealth

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// testTimeout bounds every wait of these tests: generous, to catch hangs.
const testTimeout = time.Minute

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
