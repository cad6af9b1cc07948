package gpuhealth

import (
	"errors"
	"fmt"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
)

// GPUInfo describes one GPU as NVML reports it.
type GPUInfo struct {
	// Index is NVML's index of the device.
	Index int
	// UUID identifies the physical device, such as "GPU-7f6b...".
	UUID string
	// Name is the product name, such as "NVIDIA H100 80GB HBM3".
	Name string
	// TotalMemory and FreeMemory are the device memory in bytes.
	TotalMemory, FreeMemory int64
	// ComputeMajor and ComputeMinor are the CUDA compute capability.
	ComputeMajor, ComputeMinor int
	// ECCEnabled is true when ECC is on; false when off or not supported.
	ECCEnabled bool
}

// NVML is an initialised NVIDIA management library: discovery, health events
// and running processes. It is our small front to go-nvml, so tests can give
// it go-nvml's mock servers (such as pkg/nvml/mock/dgxh100) instead of a real
// driver. It is safe for concurrent use. Close it after stopping every
// healthWatcher and ContentionMonitor built on it.
type NVML struct {
	lib nvml.Interface

	mu     sync.Mutex
	closed bool
}

// OpenNVML loads the system's NVML (libnvidia-ml.so.1, opened with dlopen at
// run time, so the binary builds and runs without a driver) and initialises it.
// Without a driver the error wraps ErrNoDriver.
func OpenNVML() (*NVML, error) {
	return NewNVML(nvml.New())
}

// NewNVML initialises lib, which is go-nvml's library or one of its mocks.
// A library that cannot be loaded, or a kernel driver that is not running,
// gives an error wrapping ErrNoDriver.
func NewNVML(lib nvml.Interface) (*NVML, error) {
	switch ret := lib.Init(); ret {
	case nvml.SUCCESS:
		return &NVML{lib: lib}, nil
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return nil, fmt.Errorf("%w: libnvidia-ml.so.1 could not be loaded", cuda.ErrNoDriver)
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return nil, fmt.Errorf("%w: the NVIDIA kernel driver is not loaded", cuda.ErrNoDriver)
	default:
		return nil, fmt.Errorf("%w: nvml init: %v", messages.ErrDeviceFault, ret)
	}
}

// Close shuts NVML down. Later calls do nothing.
func (n *NVML) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	if ret := n.lib.Shutdown(); ret != nvml.SUCCESS {
		return fmt.Errorf("%w: nvml shutdown: %v", messages.ErrDeviceFault, ret)
	}
	return nil
}

// DeviceCount returns how many GPUs NVML sees.
func (n *NVML) DeviceCount() (int, error) {
	count, ret := n.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return 0, fmt.Errorf("%w: nvml device count: %v", messages.ErrDeviceFault, ret)
	}
	return count, nil
}

// Devices describes every GPU, in NVML's index order.
func (n *NVML) Devices() ([]GPUInfo, error) {
	count, err := n.DeviceCount()
	if err != nil {
		return nil, err
	}
	infos := make([]GPUInfo, 0, count)
	for i := range count {
		info, err := n.Device(i)
		if err != nil {
			return nil, err
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// Device describes the GPU at index.
func (n *NVML) Device(index int) (GPUInfo, error) {
	dev, err := n.handle(index)
	if err != nil {
		return GPUInfo{}, err
	}
	info := GPUInfo{Index: index}
	var ret nvml.Return
	if info.Name, ret = dev.GetName(); ret != nvml.SUCCESS {
		return GPUInfo{}, deviceError(index, "name", ret)
	}
	if info.UUID, ret = dev.GetUUID(); ret != nvml.SUCCESS {
		return GPUInfo{}, deviceError(index, "UUID", ret)
	}
	mem, ret := dev.GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return GPUInfo{}, deviceError(index, "memory info", ret)
	}
	info.TotalMemory, info.FreeMemory = clampBytes(mem.Total), clampBytes(mem.Free)
	if info.ComputeMajor, info.ComputeMinor, ret = dev.GetCudaComputeCapability(); ret != nvml.SUCCESS {
		return GPUInfo{}, deviceError(index, "compute capability", ret)
	}
	current, _, ret := dev.GetEccMode()
	switch ret {
	case nvml.SUCCESS:
		info.ECCEnabled = current == nvml.FEATURE_ENABLED
	case nvml.ERROR_NOT_SUPPORTED:
		info.ECCEnabled = false
	default:
		return GPUInfo{}, deviceError(index, "ECC mode", ret)
	}
	return info, nil
}

// IndexByUUID returns NVML's index of the device with the given UUID. NVML
// numbers devices in PCI bus order while CUDA, by default, puts the fastest
// first, so the index in a HealthWatcher or ContentionMonitor report is not
// always the Driver's: match them by UUID (Driver.Properties().UUID).
func (n *NVML) IndexByUUID(uuid string) (int, error) {
	dev, ret := n.lib.DeviceGetHandleByUUID(uuid)
	switch ret {
	case nvml.SUCCESS:
	case nvml.ERROR_INVALID_ARGUMENT, nvml.ERROR_NOT_FOUND:
		return 0, fmt.Errorf("%w: no NVML device has UUID %q", messages.ErrInvalidInput, uuid)
	default:
		return 0, fmt.Errorf("%w: nvml device by UUID: %v", messages.ErrDeviceFault, ret)
	}
	index, ret := dev.GetIndex()
	if ret != nvml.SUCCESS {
		return 0, fmt.Errorf("%w: nvml index of device %q: %v", messages.ErrDeviceFault, uuid, ret)
	}
	return index, nil
}

// discover lists the GPUs that lib sees: it initialises lib, describes every
// device and shuts lib down. Without a driver the error wraps ErrNoDriver.
func discover(lib nvml.Interface) (infos []GPUInfo, err error) {
	n, err := NewNVML(lib)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, n.Close()) }()
	return n.Devices()
}

// handle returns NVML's handle for the device at index.
func (n *NVML) handle(index int) (nvml.Device, error) {
	dev, ret := n.lib.DeviceGetHandleByIndex(index)
	switch ret {
	case nvml.SUCCESS:
		return dev, nil
	case nvml.ERROR_INVALID_ARGUMENT:
		return nil, fmt.Errorf("%w: no NVML device %d", messages.ErrInvalidInput, index)
	default:
		return nil, deviceError(index, "handle", ret)
	}
}

// deviceError reports a failed NVML query about one device as a device fault.
func deviceError(index int, what string, ret nvml.Return) error {
	return fmt.Errorf("%w: device %d: nvml %s: %v", messages.ErrDeviceFault, index, what, ret)
}

// clampBytes converts an NVML byte count to int64, saturating.
func clampBytes(n uint64) int64 {
	const maxInt64 = 1<<63 - 1
	if n > maxInt64 {
		return maxInt64
	}
	return int64(n)
}
