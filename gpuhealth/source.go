package gpuhealth

import (
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/cuda/driver"
)

// Source reaches a machine's real GPUs: the CUDA driver for their memory and
// NVML for their names, health and processes. The binary uses Driver; tests
// stand simulated devices and go-nvml's mock (cuda/nvmltest) in for the
// NVIDIA driver, to exercise the real-GPU paths without one.
//
// CUDA and NVML number the same GPUs differently (CUDA puts the fastest
// first, NVML follows the PCI bus), so Open matches them by UUID: a device's
// Properties().UUID is looked up with NVML.IndexByUUID.
type Source struct {
	// DeviceCount is how many GPUs the CUDA driver reports; without a driver
	// the error wraps cuda.ErrNoDriver.
	DeviceCount func() (int, error)
	// OpenDevice opens the GPU with the given CUDA ordinal.
	OpenDevice func(ordinal int) (cuda.Device, error)
	// OpenShareable opens it as OpenDevice does, with its memory shareable
	// with other processes (cuda.Sharer; run --serve). Nil when the source
	// cannot share.
	OpenShareable func(ordinal int) (cuda.Device, error)
	// OpenNVML opens NVML; without a driver the error wraps cuda.ErrNoDriver.
	OpenNVML func() (*NVML, error)
}

// Driver is the NVIDIA driver on this machine, loaded at run time.
func Driver() Source {
	return Source{
		DeviceCount:   driver.DeviceCount,
		OpenDevice:    func(ordinal int) (cuda.Device, error) { return openDriver(ordinal) },
		OpenShareable: func(ordinal int) (cuda.Device, error) { return openDriver(ordinal, driver.WithShareable()) },
		OpenNVML:      OpenNVML,
	}
}

// openDriver opens a GPU with the driver backend.
func openDriver(ordinal int, opts ...driver.Option) (cuda.Device, error) {
	d, err := driver.Open(ordinal, opts...)
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return d, nil
}
