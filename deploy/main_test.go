// Package deploy's tests check the deployment files beside them: the systemd
// unit with systemd-analyze.
package deploy

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
