// Package cuda is vramseal's device boundary: the Device interface and its
// optional capabilities (ChunkHasher, SpanHasher, Pointers, Viewer, Sharer), the
// simulated GPU (Sim), and AllocTable, the handle table every backend
// shares. It is pure Go: the real NVIDIA backend is cuda/driver (libcuda
// loaded at run time, cgo), and NVML lives in gpuhealth, so a worker that
// runs only on Sim builds with CGO_ENABLED=0.
//
// Device memory addresses never leave the backends: callers hold opaque
// Handles.
package cuda

// Handle names one allocation on one device. It is opaque: it carries no
// device address, and it means nothing to another device.
type Handle uint64

// Properties describe a device as vramseal needs to know it.
type Properties struct {
	// Name is the product name, such as "NVIDIA H100 80GB HBM3".
	Name string
	// UUID identifies the physical device, where the backend knows it.
	UUID string
	// TotalMemory is the device memory in bytes.
	TotalMemory int64
	// ComputeMajor and ComputeMinor are the compute capability.
	ComputeMajor, ComputeMinor int
	// Integrated is true for GPUs that share system memory.
	Integrated bool
	// ManagedMemory is true when the device supports managed (unified) memory.
	ManagedMemory bool
	// PageableMemoryAccess is true when the device can access pageable host
	// memory directly.
	PageableMemoryAccess bool
}

// Device is one GPU's memory, shaped by what vramseal does with it. Every
// method is safe for concurrent use. Errors wrap the sentinels in package
// messages: ErrInvalidInput for bad sizes, handles or bounds,
// ErrInsufficientVRAM when memory is short, ErrAllocationFailed when an
// allocation is refused otherwise, ErrDeviceFault when the device fails, and
// ErrStopped after Close.
//
// Handles are never reused and the zero Handle names no allocation, so a
// freed or unknown handle is always ErrInvalidInput. A copy must lie within
// its allocation, 0 <= offset and offset+len(p) <= size, checked without
// overflow for every copy, including empty ones. Package cudatest holds the
// contract suite every implementation passes.
type Device interface {
	// Properties describes the device. It answers even after Close.
	Properties() Properties
	// MemInfo returns the device's free and total memory in bytes.
	MemInfo() (free, total int64, err error)
	// Allocate reserves size bytes of device memory; size must be positive.
	Allocate(size int64) (Handle, error)
	// Free releases an allocation. Freeing it twice is ErrInvalidInput.
	Free(h Handle) error
	// Write copies p into the allocation at offset.
	Write(h Handle, offset int64, p []byte) error
	// Read copies len(p) bytes of the allocation at offset into p.
	Read(h Handle, offset int64, p []byte) error
	// Close frees every allocation still outstanding and releases the device.
	// It is idempotent; later calls other than Close and Properties fail with
	// ErrStopped.
	Close() error
}
