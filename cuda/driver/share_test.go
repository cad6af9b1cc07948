package driver

import (
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
)

// noVMMEnv is set in the child process that runs over a stand-in libcuda
// built without the virtual memory management calls.
const noVMMEnv = "VRAMSEAL_FAKE_LIBCUDA_NO_VMM"

// TestDriverOnDeviceImportsASharedAllocationByUUID shares an allocation of
// a device opened WithShareable and maps it again with Import, by the
// device's UUID, as another process would: the bytes read back, the mapping
// is the granularity-rounded size, reads past its end stop there, a closed
// mapping refuses reads, and Import refuses a UUID no device has and a
// descriptor of another kind. Over the stand-in it also checks a write
// through the mapping is refused; on a GPU that is cuda/gpucheck.sh's share
// step, in a process of its own, as a refused write may leave the context
// unusable.
func TestDriverOnDeviceImportsASharedAllocationByUUID(t *testing.T) {
	count, err := DeviceCount()
	if err != nil {
		t.Skipf("no NVIDIA driver: %v", err)
	}
	if count == 0 {
		t.Skip("no NVIDIA driver: the driver reports no CUDA device")
	}
	d, err := Open(0, WithShareable())
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, d.Close(), "closing the driver") })
	require.True(t, d.Shareable())

	const size = 3<<20 + 7
	want := make([]byte, size)
	_, _ = rand.Read(want)
	h, err := d.Allocate(size)
	require.NoError(t, err)
	require.NoError(t, d.Write(h, 0, want))
	s, err := d.Share(h)
	require.NoError(t, err)
	g := d.AllocationGranularity()
	assert.Equal(t, cuda.ShareCUDAVMM, s.Kind)
	assert.Equal(t, (size+g-1)/g*g, s.MapSize, "the size rounded up to the granularity")
	assert.Zero(t, s.Offset)

	m, err := Import(d.Properties().UUID, s)
	require.NoError(t, err, "Import by the device's UUID")
	require.NoError(t, s.File.Close(), "the mapping outlives the descriptor")
	assert.Equal(t, s.MapSize, m.Size())
	got := make([]byte, size)
	n, err := m.ReadAt(got, 0)
	require.NoError(t, err)
	assert.Equal(t, size, n)
	assert.Equal(t, want, got, "the bytes through the imported mapping")
	n, err = m.ReadAt(make([]byte, 10), s.MapSize-4)
	assert.Equal(t, 4, n, "a read past the end copies what there is")
	assert.ErrorIs(t, err, io.EOF)
	if os.Getenv(fakeCUDAEnv) != "" {
		_, err = m.WriteAt(want[:1], 0)
		assert.ErrorIs(t, err, messages.ErrDeviceFault, "a write through the read-only mapping")
	}
	require.NoError(t, m.Close())
	require.NoError(t, m.Close(), "Close is idempotent")
	_, err = m.ReadAt(got[:1], 0)
	assert.ErrorIs(t, err, messages.ErrStopped, "a read of a closed mapping")

	_, err = Import("GPU-00000000-0000-0000-0000-000000000000", s)
	assert.ErrorIs(t, err, messages.ErrInvalidInput, "a UUID no device has")
	_, err = Import(d.Properties().UUID, cuda.Shared{Kind: cuda.ShareMemfd, File: os.Stdin, MapSize: 4096})
	assert.ErrorIs(t, err, messages.ErrInvalidInput, "a memfd descriptor")

	require.NoError(t, d.Free(h))
	_, err = d.Share(h)
	assert.ErrorIs(t, err, messages.ErrInvalidInput, "Share of a freed handle")
}

// TestDriverShareableNeedsVMMOverFakeLibcuda runs TestDriverWithoutVMM in a
// child process over a stand-in libcuda built without cuMemCreate, and over
// one that has the calls on devices that say they do not support them.
func TestDriverShareableNeedsVMMOverFakeLibcuda(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		cflags []string
		env    string
	}{
		{"no VMM calls", []string{"-DFAKE_NO_VMM"}, ""},
		{"devices without VMM support", nil, "VRAMSEAL_FAKE_CUDA_NO_VMM_SUPPORT=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := buildFakeLibcuda(t, tc.cflags...)
			child := exec.Command(os.Args[0], "-test.run=^TestDriverWithoutVMM$", "-test.v", "-test.count=1")
			child.Env = append(os.Environ(), "LD_LIBRARY_PATH="+dir, fakeCUDAEnv+"=1", noVMMEnv+"=1", tc.env)
			out, err := child.CombinedOutput()
			require.NoError(t, err, "over the stand-in without VMM:\n%s", out)
			assert.Contains(t, string(out), "--- PASS: TestDriverWithoutVMM ", "%s", out)
		})
	}
}

// TestDriverWithoutVMM checks, over a driver without usable virtual memory
// management, that a shareable Open and an Import on the device fail with
// ErrNoVMM, and a plain Open works.
func TestDriverWithoutVMM(t *testing.T) {
	if os.Getenv(noVMMEnv) == "" {
		t.Skip("runs over the stand-in libcuda built without VMM (TestDriverShareableNeedsVMMOverFakeLibcuda)")
	}
	d, err := Open(0)
	require.NoError(t, err, "a plain Open needs no VMM")
	assert.False(t, d.Shareable())
	uuid := d.Properties().UUID
	require.NoError(t, d.Close())

	_, err = Open(0, WithShareable())
	require.ErrorIs(t, err, ErrNoVMM)
	_, err = Import(uuid, cuda.Shared{Kind: cuda.ShareCUDAVMM, File: os.Stdin, MapSize: 2 << 20})
	assert.ErrorIs(t, err, ErrNoVMM)
	d, err = Open(0)
	require.NoError(t, err, "the failed Open released what it took")
	require.NoError(t, d.Close())
}
