package gpuhealth

import (
	"errors"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/internal/nvmltest"
	"github.com/vramseal/vramseal/messages"
)

func TestDiscoverListsEveryDGXH100Device(t *testing.T) {
	machine := nvmltest.New(t)
	s := machine.Server

	infos, err := discover(s)
	require.NoError(t, err)

	require.Len(t, infos, len(s.Devices))
	assert.Len(t, infos, 8, "a DGX H100 has eight GPUs")
	uuids := make(map[string]bool, len(infos))
	for i, info := range infos {
		d := machine.Device(t, i)
		assert.Equal(t, i, info.Index, "device %d index", i)
		assert.NotEmpty(t, info.Name, "device %d name", i)
		assert.Equal(t, d.Config.Name, info.Name, "device %d name", i)
		assert.NotEmpty(t, info.UUID, "device %d UUID", i)
		assert.Equal(t, d.UUID, info.UUID, "device %d UUID", i)
		assert.False(t, uuids[info.UUID], "device %d repeats UUID %s", i, info.UUID)
		uuids[info.UUID] = true
		assert.Positive(t, info.TotalMemory, "device %d total memory", i)
		assert.Equal(t, int64(d.MemoryInfo.Total), info.TotalMemory, "device %d total memory", i)
		assert.Equal(t, int64(d.MemoryInfo.Free), info.FreeMemory, "device %d free memory", i)
		assert.Equal(t, d.Config.CudaMajor, info.ComputeMajor, "device %d compute major", i)
		assert.Equal(t, d.Config.CudaMinor, info.ComputeMinor, "device %d compute minor", i)
		assert.True(t, info.ECCEnabled, "device %d ECC", i)
	}
	assert.Len(t, s.InitCalls(), 1, "Discover initialises NVML once")
	assert.Len(t, s.ShutdownCalls(), 1, "Discover shuts NVML down")
}

func TestNewNVMLInitFailures(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ret        nvml.Return
		noDriver   bool
		deviceFail bool
	}{
		{"library missing", nvml.ERROR_LIBRARY_NOT_FOUND, true, false},
		{"kernel driver not loaded", nvml.ERROR_DRIVER_NOT_LOADED, true, false},
		{"version mismatch", nvml.ERROR_LIB_RM_VERSION_MISMATCH, false, true},
		{"unknown error", nvml.ERROR_UNKNOWN, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			machine := nvmltest.New(t)
			s := machine.Server
			s.InitFunc = func() nvml.Return { return tc.ret }

			n, err := NewNVML(s)
			require.Error(t, err)
			assert.Nil(t, n)
			assert.Equal(t, tc.noDriver, errors.Is(err, cuda.ErrNoDriver), "errors.Is(%v, cuda.ErrNoDriver)", err)
			assert.Equal(t, tc.deviceFail, errors.Is(err, messages.ErrDeviceFault), "errors.Is(%v, ErrDeviceFault)", err)
			if tc.noDriver {
				assert.Contains(t, err.Error(), "NVIDIA driver not found")
			}

			infos, err := discover(s)
			assert.Nil(t, infos)
			assert.Equal(t, tc.noDriver, errors.Is(err, cuda.ErrNoDriver), "Discover: %v", err)
			assert.Empty(t, s.ShutdownCalls(), "nothing to shut down after a failed init")
		})
	}
}

func TestOpenNVMLWithoutDriver(t *testing.T) {
	n, err := OpenNVML()
	if err == nil {
		require.NoError(t, n.Close())
		t.Skip("an NVIDIA driver is installed; this test covers machines without one")
	}
	assert.ErrorIs(t, err, cuda.ErrNoDriver)
	assert.EqualError(t, err, "NVIDIA driver not found: libnvidia-ml.so.1 could not be loaded")
}

func TestDeviceQueryFailures(t *testing.T) {
	const target = 5
	for _, tc := range []struct {
		name   string
		inject func(d *server.Device)
		want   string
	}{
		{"name", func(d *server.Device) {
			d.GetNameFunc = func() (string, nvml.Return) { return "", nvml.ERROR_GPU_IS_LOST }
		}, "nvml name"},
		{"UUID", func(d *server.Device) {
			d.GetUUIDFunc = func() (string, nvml.Return) { return "", nvml.ERROR_UNKNOWN }
		}, "nvml UUID"},
		{"memory", func(d *server.Device) {
			d.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) { return nvml.Memory{}, nvml.ERROR_GPU_IS_LOST }
		}, "nvml memory info"},
		{"compute capability", func(d *server.Device) {
			d.GetCudaComputeCapabilityFunc = func() (int, int, nvml.Return) { return 0, 0, nvml.ERROR_UNKNOWN }
		}, "nvml compute capability"},
		{"ECC", func(d *server.Device) {
			d.GetEccModeFunc = func() (nvml.EnableState, nvml.EnableState, nvml.Return) {
				return 0, 0, nvml.ERROR_GPU_IS_LOST
			}
		}, "nvml ECC mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			machine := nvmltest.New(t)
			s := machine.Server
			tc.inject(machine.Device(t, target))
			n := openMockNVML(t, s)

			_, err := n.Device(target)
			require.Error(t, err)
			assert.ErrorIs(t, err, messages.ErrDeviceFault)
			assert.Contains(t, err.Error(), "device 5: "+tc.want)

			infos, err := n.Devices()
			assert.ErrorIs(t, err, messages.ErrDeviceFault, "Devices fails when one device does")
			assert.Nil(t, infos)

			info, err := n.Device(target - 1)
			require.NoError(t, err, "the other devices still answer")
			assert.Equal(t, target-1, info.Index)
		})
	}
}

func TestDeviceECCState(t *testing.T) {
	for _, tc := range []struct {
		name    string
		current nvml.EnableState
		ret     nvml.Return
		want    bool
	}{
		{"enabled", nvml.FEATURE_ENABLED, nvml.SUCCESS, true},
		{"disabled", nvml.FEATURE_DISABLED, nvml.SUCCESS, false},
		{"not supported", nvml.FEATURE_ENABLED, nvml.ERROR_NOT_SUPPORTED, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			machine := nvmltest.New(t)
			s := machine.Server
			machine.Device(t, 0).GetEccModeFunc = func() (nvml.EnableState, nvml.EnableState, nvml.Return) {
				return tc.current, nvml.FEATURE_ENABLED, tc.ret
			}
			n := openMockNVML(t, s)

			info, err := n.Device(0)
			require.NoError(t, err)
			assert.Equal(t, tc.want, info.ECCEnabled)
		})
	}
}

func TestDeviceIndexOutOfRange(t *testing.T) {
	n := openMockNVML(t, nvmltest.New(t).Server)
	for _, index := range []int{-1, 8, 1000} {
		_, err := n.Device(index)
		assert.ErrorIs(t, err, messages.ErrInvalidInput, "Device(%d)", index)
	}
}

func TestNVMLCloseShutsDownOnce(t *testing.T) {
	machine := nvmltest.New(t)
	s := machine.Server
	n, err := NewNVML(s)
	require.NoError(t, err)

	require.NoError(t, n.Close())
	require.NoError(t, n.Close())
	assert.Len(t, s.ShutdownCalls(), 1)
}

func TestNVMLCloseReportsShutdownFailure(t *testing.T) {
	machine := nvmltest.New(t)
	s := machine.Server
	s.ShutdownFunc = func() nvml.Return { return nvml.ERROR_UNKNOWN }
	n, err := NewNVML(s)
	require.NoError(t, err)

	assert.ErrorIs(t, n.Close(), messages.ErrDeviceFault)
}

func TestDeviceCountFailure(t *testing.T) {
	machine := nvmltest.New(t)
	s := machine.Server
	s.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
	n := openMockNVML(t, s)

	_, err := n.DeviceCount()
	assert.ErrorIs(t, err, messages.ErrDeviceFault)
	_, err = discover(s)
	assert.ErrorIs(t, err, messages.ErrDeviceFault)
}

func TestIndexByUUID(t *testing.T) {
	machine := nvmltest.New(t)
	s := machine.Server
	n := openMockNVML(t, s)
	for i := range s.Devices {
		got, err := n.IndexByUUID(machine.Device(t, i).UUID)
		require.NoError(t, err)
		assert.Equal(t, i, got)
	}
	_, err := n.IndexByUUID("GPU-00000000-0000-0000-0000-000000000000")
	assert.ErrorIs(t, err, messages.ErrInvalidInput)

	s.DeviceGetHandleByUUIDFunc = func(string) (nvml.Device, nvml.Return) { return nil, nvml.ERROR_UNKNOWN }
	_, err = n.IndexByUUID(machine.Device(t, 0).UUID)
	assert.ErrorIs(t, err, messages.ErrDeviceFault)
}
