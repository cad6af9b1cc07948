package driver_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/cuda/cudatest"
	"github.com/vramseal/vramseal/cuda/driver"
)

// TestDriverContract runs the Device contract against CUDA device 0. It
// skips on machines without an NVIDIA driver or GPU; gpucheck.sh runs it on
// one that has both.
func TestDriverContract(t *testing.T) {
	runContract(t, false)
}

// TestDriverContractShareable runs the Device contract against CUDA device
// 0 opened WithShareable: every allocation a CUDA virtual memory
// allocation, shared as a cuda-vmm-fd descriptor that the suite imports,
// reads back and tries to write through. It skips as TestDriverContract
// does.
func TestDriverContractShareable(t *testing.T) {
	runContract(t, true)
}

// runContract runs the Device contract against CUDA device 0, opened
// WithShareable if shareable, or skips without a driver or a device.
func runContract(t *testing.T, shareable bool) {
	count, err := driver.DeviceCount()
	if err != nil {
		t.Skipf("no NVIDIA driver: %v", err)
	}
	if count == 0 {
		t.Skip("no NVIDIA driver: the driver reports no CUDA device")
	}
	var opts []driver.Option
	if shareable {
		opts = append(opts, driver.WithShareable())
	}
	cudatest.Run(t, func(t *testing.T) cuda.Device {
		d, err := driver.Open(0, opts...)
		require.NoError(t, err)
		require.Equal(t, shareable, d.Shareable(), "opened shareable exactly when asked")
		return d
	})
}
