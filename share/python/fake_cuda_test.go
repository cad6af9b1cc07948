package python_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeLibcuda builds the stand-in libcuda.so.1 of cuda/driver/testdata
// into a temporary directory and returns it. It builds it as
// cuda/driver's own tests do (their helper is in a _test.go file, so
// it cannot be shared). Without a C compiler the test skips, but not in CI.
func fakeLibcuda(t *testing.T) string {
	t.Helper()
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		if os.Getenv("CI") != "" {
			require.FailNow(t, "no C compiler", "CI must build the stand-in libcuda for the Python client's CUDA tests: %v", err)
		}
		t.Skipf("no C compiler to build the stand-in libcuda: %v", err)
	}
	dir := t.TempDir()
	driver := filepath.Join("..", "..", "cuda", "driver")
	build := exec.Command(cc, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", filepath.Join(dir, "libcuda.so.1"),
		filepath.Join(driver, "testdata", "fake_libcuda.c"), filepath.Join(driver, "kernel", "sha256.c"), "-lpthread")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building the stand-in libcuda:\n%s", out)
	return dir
}

// TestThePythonClientMapsCUDAGrants runs share/python/tests/test_cuda.py
// over the stand-in libcuda: cuda-vmm-fd grants of real VMM allocations,
// mapped read-only, copied out, revoked and unmapped.
func TestThePythonClientMapsCUDAGrants(t *testing.T) {
	t.Parallel()
	python := pythonWithNumpy(t)
	lib := fakeLibcuda(t)
	cmd := exec.Command(python, "-m", "unittest", "-v", "tests.test_cuda")
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+lib, "VRAMSEAL_FAKE_LIBCUDA=1", "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the Python client's CUDA tests:\n%s", out)
	assert.NotContains(t, string(out), "skipped", "no Python test may skip here:\n%s", out)
	assert.Contains(t, string(out), "OK")
}
