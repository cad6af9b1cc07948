package python_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/fakecuda"
)

// TestThePythonClientMapsCUDAGrants runs share/python/tests/test_cuda.py
// over the stand-in libcuda: cuda-vmm-fd grants of real VMM allocations,
// mapped read-only, copied out, revoked and unmapped.
func TestThePythonClientMapsCUDAGrants(t *testing.T) {
	t.Parallel()
	python := pythonWithNumpy(t)
	lib := fakecuda.Build(t)
	cmd := exec.Command(python, "-m", "unittest", "-v", "tests.test_cuda")
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+lib, fakecuda.Env+"=1", "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the Python client's CUDA tests:\n%s", out)
	assert.NotContains(t, string(out), "skipped", "no Python test may skip here:\n%s", out)
	assert.Contains(t, string(out), "OK")
}
