package driver

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKernelImagesMatchTheComputeCapability(t *testing.T) {
	for _, tc := range []struct {
		major, minor int
		want         []string
	}{
		{8, 0, []string{"sm_80 cubin", "PTX"}},
		{8, 6, []string{"sm_80 cubin", "PTX"}},
		{8, 9, []string{"sm_80 cubin", "PTX"}},
		{9, 0, []string{"sm_90 cubin", "PTX"}},
		{7, 5, []string{"PTX"}},
		{10, 0, []string{"PTX"}},
		{12, 0, []string{"PTX"}},
	} {
		var got []string
		for _, image := range kernelImages(tc.major, tc.minor) {
			require.NotEmpty(t, image.data, "%s is embedded", image.name)
			got = append(got, image.name)
		}
		assert.Equal(t, tc.want, got, "compute capability %d.%d", tc.major, tc.minor)
	}
	assert.True(t, bytes.HasPrefix(sha256SM80, []byte("\x7fELF")), "the sm_80 cubin is an ELF image")
	assert.True(t, bytes.HasPrefix(sha256SM90, []byte("\x7fELF")), "the sm_90 cubin is an ELF image")
}

// openLogged opens device 0 with opts, logging to a buffer it returns, and
// closes it when the test ends.
func openLogged(t *testing.T, opts ...Option) (*Device, *bytes.Buffer) {
	t.Helper()
	openTestDriver(t) // skips without a driver
	var logged bytes.Buffer
	d, err := Open(0, append(opts, WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))...)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, d.Close()) })
	return d, &logged
}

func TestDriverOnDeviceLoadsTheMatchingKernelImage(t *testing.T) {
	d, logged := openLogged(t)
	require.True(t, d.HashesOnDevice(), "the kernel loaded:\n%s", logged)
	p := d.Properties()
	want := kernelImages(p.ComputeMajor, p.ComputeMinor)[0].name
	assert.Equal(t, want, d.KernelImage(), "the cubin for compute capability %d.%d, else the PTX", p.ComputeMajor, p.ComputeMinor)
	line := logged.String()
	t.Logf("%s", line)
	assert.Contains(t, line, "SHA-256 kernel loaded")
	for _, key := range []string{"image=", "cuda_driver_version=", "registers=", "local_bytes=0 ", "max_threads_per_block="} {
		assert.Contains(t, line, key, "the log says %s", key)
	}
	if os.Getenv(fakeCUDAEnv) != "" {
		assert.Equal(t, "sm_90 cubin", d.KernelImage(), "the fake's devices are 9.0")
		assert.Contains(t, line, "cuda_driver_version=12.4")
		assert.Contains(t, line, `jit_info_log="fake libcuda: cubin loaded as it is"`)
	}
}

func TestDriverOnDeviceFallsBackToThePTX(t *testing.T) {
	if os.Getenv(fakeCUDAEnv) == "" {
		t.Skip("needs a device no embedded cubin matches: the fake libcuda's 9.0 is offered the sm_80 one")
	}
	d, logged := openLogged(t, withKernelImages(func(int, int) []kernelImage {
		return []kernelImage{{"sm_80 cubin", sha256SM80}, {"PTX", sha256PTX}}
	}))
	require.True(t, d.HashesOnDevice(), "the PTX loaded:\n%s", logged)
	assert.Equal(t, "PTX", d.KernelImage())
	lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
	require.Len(t, lines, 1, "one line:\n%s", logged)
	assert.Contains(t, lines[0], "SHA-256 kernel loaded")
	assert.Contains(t, lines[0], "sm_80 cubin: device fault: cuda device 0: cuModuleLoadDataEx: CUDA_ERROR_NO_BINARY_FOR_GPU")
	assert.Contains(t, lines[0], "JIT error log: fake libcuda: the cubin is not for this device")
	assert.Contains(t, lines[0], `jit_info_log="fake libcuda: PTX kept, not compiled"`)
}

func TestDriverOnDeviceUUIDIsTheInstancesOwn(t *testing.T) {
	d := openTestDriver(t)
	uuid := d.Properties().UUID
	assert.Regexp(t, `^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`, uuid)
	if os.Getenv(fakeCUDAEnv) != "" {
		assert.Equal(t, "GPU-b0b1b2b3-b4b5-b6b7-b8b9-babbbcbdbebf", uuid, "cuDeviceGetUuid_v2's, not cuDeviceGetUuid's (a MIG parent's)")
	}
}
