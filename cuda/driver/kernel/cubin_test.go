package kernel

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cubinArchs are the GPU architectures build_cubins.sh assembles for.
var cubinArchs = []string{"sm_80", "sm_90"}

// findPTXAS returns $PTXAS or ptxas on PATH, or skips the test without
// one; CI (.ci/run fetches ptxas and sets PTXAS) fails instead.
func findPTXAS(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PTXAS"); p != "" {
		return p
	}
	if p, err := exec.LookPath("ptxas"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("ptxas is not installed, and CI must assemble the kernel: .ci/run fetches it with fetch_ptxas.sh")
	}
	t.Skip("ptxas is not installed; fetch_ptxas.sh fetches it from Debian")
	return ""
}

// ptxasInfo matches what ptxas -v says of the kernel's frame and registers.
var (
	ptxasFrame     = regexp.MustCompile(`(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads`)
	ptxasRegisters = regexp.MustCompile(`Used (\d+) registers`)
)

// TestPTXAssemblesWithoutSpills assembles the committed PTX with ptxas for
// every architecture the cubins cover and fails on a stack frame, spills
// or local memory: SHA-256 must run from registers, or each chunk's thread
// waits on memory every round. It also bounds the registers, so that a
// block of hashThreads threads (128) still fits several times in an SM.
func TestPTXAssemblesWithoutSpills(t *testing.T) {
	ptxas := findPTXAS(t)
	for _, arch := range cubinArchs {
		t.Run(arch, func(t *testing.T) {
			out, err := exec.Command(ptxas, "-arch="+arch, "-v", "-o", filepath.Join(t.TempDir(), "k.cubin"), "sha256.ptx").CombinedOutput()
			require.NoError(t, err, "ptxas:\n%s", out)
			frame := ptxasFrame.FindSubmatch(out)
			require.NotNil(t, frame, "ptxas -v reports the kernel's frame:\n%s", out)
			for i, what := range []string{"stack frame", "spill stores", "spill loads"} {
				assert.Equal(t, "0", string(frame[i+1]), "%s bytes of %s:\n%s", frame[i+1], what, out)
			}
			assert.NotContains(t, string(out), "lmem", "no local memory:\n%s", out)
			regs := ptxasRegisters.FindSubmatch(out)
			require.NotNil(t, regs, "ptxas -v reports the registers:\n%s", out)
			n, err := strconv.Atoi(string(regs[1]))
			require.NoError(t, err)
			assert.LessOrEqual(t, n, 128, "registers a thread:\n%s", out)
			t.Logf("%s: %d registers, no spills, no local memory", arch, n)
		})
	}
}

// TestCubinsAreUpToDate reassembles the cubins with build_cubins.sh and
// fails if any differs by a byte from the committed one: the driver loads
// them on GPUs they match, in place of the PTX.
func TestCubinsAreUpToDate(t *testing.T) {
	ptxas := findPTXAS(t)
	out := t.TempDir()
	build := exec.Command("bash", "build_cubins.sh", out)
	build.Env = append(os.Environ(), "PTXAS="+ptxas)
	log, err := build.CombinedOutput()
	require.NoError(t, err, "build_cubins.sh:\n%s", log)
	for _, arch := range cubinArchs {
		name := "sha256_" + arch[:2] + arch[3:] + ".cubin"
		committed, err := os.ReadFile(name)
		require.NoError(t, err)
		fresh, err := os.ReadFile(filepath.Join(out, name))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(committed, fresh),
			"%s is not what build_cubins.sh makes of sha256.ptx: run cuda/driver/kernel/build_cubins.sh and commit the result", name)
	}
}
