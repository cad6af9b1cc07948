package kernel

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPTXIsUpToDate regenerates the PTX with build_ptx.sh when clang is on
// this machine and fails if it differs by a byte from the committed
// sha256.ptx. PTX made by another clang version differs without being
// wrong, so the test then skips, naming both versions. CI (.ci/run)
// installs clang, so there (CI set) a missing clang fails the test.
func TestPTXIsUpToDate(t *testing.T) {
	clang, err := exec.LookPath("clang")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("clang is not installed, and CI must check the PTX: .ci/run installs it")
		}
		t.Skip("clang is not installed; build_ptx.sh installs it")
	}
	committed, err := os.ReadFile("sha256.ptx")
	require.NoError(t, err)
	out, err := exec.Command(clang, "--version").Output()
	require.NoError(t, err, "clang --version")
	version, _, _ := strings.Cut(string(out), "\n")
	header, _, _ := bytes.Cut(committed, []byte("\n"))
	if !strings.Contains(string(header), " with "+version+". ") {
		t.Skipf("the committed PTX was made by another clang (%s); this machine has %s", header, version)
	}

	regenerated := filepath.Join(t.TempDir(), "sha256.ptx")
	build := exec.Command("bash", "build_ptx.sh", regenerated)
	log, err := build.CombinedOutput()
	require.NoError(t, err, "build_ptx.sh:\n%s", log)
	fresh, err := os.ReadFile(regenerated)
	require.NoError(t, err)
	require.True(t, bytes.Equal(committed, fresh),
		"sha256.ptx is not what build_ptx.sh makes of sha256.c: run cuda/driver/kernel/build_ptx.sh and commit the result")
}
