// Package deploy's tests check the deployment files beside them: the systemd
// unit with systemd-analyze, the Kubernetes manifests by decoding them
// strictly into the API types they claim to be.
package deploy

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
