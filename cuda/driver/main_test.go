package driver

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// scratchDir holds what the package's tests build once for all of them
// (bin/vramseal for the gpucheck dry runs), made by the first that needs
// it; TestMain removes it.
var scratchDir string

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if scratchDir != "" {
			os.RemoveAll(scratchDir)
		}
		os.Exit(code)
	}))
}
