package cuda

import (
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"github.com/stretchr/testify/require"
)

// newMockServer returns go-nvml's DGX H100 mock (eight H100s) with the calls
// the mock leaves out answered as a healthy, idle machine would: ECC on, no
// pending page retirement, no failed row remap, no running processes, no
// events. Tests override single functions on mockDevice(s, i) to inject
// faults; the mock panics on any call nobody answered.
func newMockServer(t *testing.T) *server.Server {
	t.Helper()
	s := dgxh100.New()
	require.Len(t, s.Devices, 8, "dgxh100 mock devices")
	for i := range s.Devices {
		d := mockDevice(t, s, i)
		d.GetEccModeFunc = func() (nvml.EnableState, nvml.EnableState, nvml.Return) {
			return nvml.FEATURE_ENABLED, nvml.FEATURE_ENABLED, nvml.SUCCESS
		}
		d.GetRetiredPagesPendingStatusFunc = func() (nvml.EnableState, nvml.Return) {
			return nvml.FEATURE_DISABLED, nvml.SUCCESS
		}
		d.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) {
			return 0, 0, false, false, nvml.SUCCESS
		}
		d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
			return nil, nvml.SUCCESS
		}
		d.GetGraphicsRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
			return nil, nvml.SUCCESS
		}
	}
	return s
}

// mockDevice returns the mock device at index i of s.
func mockDevice(t *testing.T, s *server.Server, i int) *server.Device {
	t.Helper()
	d, ok := s.Devices[i].(*server.Device)
	require.True(t, ok, "mock device %d has type %T", i, s.Devices[i])
	return d
}

// openMockNVML initialises NVML over s and closes it when the test ends.
func openMockNVML(t *testing.T, s *server.Server) *NVML {
	t.Helper()
	n, err := NewNVML(s)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	return n
}
