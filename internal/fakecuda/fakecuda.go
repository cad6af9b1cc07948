// Package fakecuda builds the stand-in libcuda.so.1
// (cuda/driver/testdata/fake_libcuda.c: host memory and memfds instead of a
// GPU) for the tests that drive the CUDA backend, or map its grants,
// without a GPU. It is for tests only.
package fakecuda

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// Env is set in the environment of a process that runs over the stand-in,
// so that its tests know they do (the stand-in itself reads nothing).
const Env = "VRAMSEAL_FAKE_LIBCUDA"

// Build compiles the stand-in as libcuda.so.1 in a temporary directory of
// t and returns that directory, for LD_LIBRARY_PATH. cflags go to the C
// compiler ($CC, else cc); -DFAKE_NO_VMM leaves out the CUDA VMM calls.
// Without a compiler the test skips, and under CI fails instead.
func Build(t testing.TB, cflags ...string) string {
	t.Helper()
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		if os.Getenv("CI") != "" {
			require.FailNow(t, "no C compiler", "CI builds the stand-in libcuda: %v", err)
		}
		t.Skipf("no C compiler to build the stand-in libcuda: %v", err)
	}
	driver := filepath.Join(sourceDir(t), "..", "..", "cuda", "driver")
	dir := t.TempDir()
	args := append([]string{"-shared", "-fPIC", "-O2", "-Wall", "-Werror"}, cflags...)
	build := exec.Command(cc, append(args, "-o", filepath.Join(dir, "libcuda.so.1"),
		filepath.Join(driver, "testdata", "fake_libcuda.c"), filepath.Join(driver, "kernel", "sha256.c"), "-lpthread")...)
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building the stand-in libcuda:\n%s", out)
	return dir
}

// sourceDir is the directory of this file, from which the stand-in's
// sources are found whatever package's tests build it.
func sourceDir(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok, "the stand-in's sources cannot be found: no caller information")
	return filepath.Dir(file)
}
