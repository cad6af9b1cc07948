package main

import "github.com/vramseal/vramseal/cuda"

// gpuSource reaches the real GPUs: the CUDA driver for their memory and NVML
// for their names, health and processes. Commands take it from app, so that
// in-process tests can stand simulated devices and go-nvml's mock in for the
// NVIDIA driver (see mock_machine_test.go) and exercise the real-GPU paths;
// the binary uses driverGPUs.
//
// CUDA and NVML number the same GPUs differently (CUDA puts the fastest
// first, NVML follows the PCI bus), so the worker matches them by UUID: a
// device's Properties().UUID is looked up with NVML.IndexByUUID.
type gpuSource struct {
	// deviceCount is how many GPUs the CUDA driver reports; without a driver
	// the error wraps cuda.ErrNoDriver.
	deviceCount func() (int, error)
	// openDevice opens the GPU with the given CUDA ordinal.
	openDevice func(ordinal int) (cuda.Device, error)
	// openNVML opens NVML; without a driver the error wraps cuda.ErrNoDriver.
	openNVML func() (*cuda.NVML, error)
}

// driverGPUs is the NVIDIA driver on this machine, loaded at run time.
func driverGPUs() gpuSource {
	return gpuSource{
		deviceCount: cuda.DriverDeviceCount,
		openDevice: func(ordinal int) (cuda.Device, error) {
			d, err := cuda.OpenDriver(ordinal)
			if err != nil {
				return nil, err // not a typed nil inside the interface
			}
			return d, nil
		},
		openNVML: cuda.OpenNVML,
	}
}
