package driver

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDriverOnDevicePointerReachesTheBytes copies an allocation out through
// its device pointer (what a lease hands inference code) and compares it
// with what was written. gpucheck.sh runs it on a GPU and
// TestGPUCheckDryRun over the stand-in libcuda; without a driver it
// skips.
func TestDriverOnDevicePointerReachesTheBytes(t *testing.T) {
	d := openTestDriver(t)
	const size = 4<<20 + 3
	h, err := d.Allocate(size)
	require.NoError(t, err) // Close frees it should a check fail
	fillDevice(t, d, h, size, 42)
	want := make([]byte, size)
	require.NoError(t, d.Read(h, 0, want))

	ptr, err := d.DevicePointer(h)
	require.NoError(t, err)
	require.NotZero(t, ptr)
	got := make([]byte, size)
	require.NoError(t, d.CopyFromPointer(got, ptr))
	assert.Equal(t, want, got, "the pointer reaches the allocation's bytes")

	require.NoError(t, d.Free(h))
	_, err = d.DevicePointer(h)
	assert.Error(t, err, "a freed allocation has no pointer")
}
