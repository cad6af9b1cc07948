package driver

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
)

// Device is one NVIDIA GPU driven through the CUDA driver API. libcuda.so.1
// is loaded with dlopen at run time, so programs using it build and run
// on machines without a GPU; Open then fails with ErrNoDriver.
//
// Memory comes only from cuMemAlloc, or, on a device opened WithShareable,
// from cuMemCreate (see Share): dedicated device memory, never managed,
// host-mapped or pinned host memory. Copies are synchronous cuMemcpy calls
// from and to the caller's buffers, with the device's primary context made
// current on the calling OS thread within each call.
//
// It is safe for concurrent use. Copies on different allocations run in
// parallel; Free and Close wait for copies under way on what they free.
type Device struct {
	dev   cudaDevice
	props cuda.Properties

	// kernel is the SHA-256 kernel, unless kernelErr says why it did not
	// load. Both are set at Open and never change.
	kernel      cudaKernel
	kernelImage string
	kernelErr   error

	// lanes hold the launch lanes (laneCount of them) while no hash uses
	// them; nil when the kernel did not load. regrow is set when memory is
	// freed, so that a lane that gave up its digest buffer tries again.
	lanes     chan *lane
	laneCount int
	regrow    atomic.Bool
	reserved  atomic.Int64 // bytes of digest buffers the lanes hold
	stats     hashStats

	// granularity is the size shareable allocations are rounded up to;
	// zero unless the device was opened WithShareable. zeros, as long,
	// clears the padding past an allocation's size, which clients map too.
	granularity int64
	zeros       []byte

	// mu guards table and vmm. Copies run outside it, under the
	// allocation's lock.
	mu    sync.Mutex
	table cuda.AllocTable[devicePtr]
	// vmm holds the CUDA handle of each shareable allocation, by address.
	vmm map[devicePtr]vmmMem
}

var _ cuda.Device = (*Device)(nil)

// DeviceCount returns the number of CUDA devices. Without a driver it
// fails with ErrNoDriver; with a driver but no device it returns zero.
func DeviceCount() (int, error) {
	return cudaDeviceCount()
}

// Open opens CUDA device index, retains its primary context and loads
// the SHA-256 kernel into it (see HashesOnDevice). It fails with
// ErrNoDriver without a driver, with messages.ErrInvalidInput for an index
// that names no device, and with messages.ErrDeviceFault if the device does
// not answer; a kernel that does not load is logged, not an error. Opened
// WithShareable on a driver without virtual memory management, it fails
// with ErrNoVMM.
func Open(index int, opts ...Option) (*Device, error) {
	o := driverOptions{log: slog.Default(), images: kernelImages}
	for _, opt := range opts {
		opt(&o)
	}
	if index < 0 {
		return nil, fmt.Errorf("%w: cuda device index %d is negative", messages.ErrInvalidInput, index)
	}
	count, err := cudaDeviceCount()
	if err != nil {
		return nil, err
	}
	if index >= count {
		return nil, fmt.Errorf("%w: no cuda device %d (%d devices)", messages.ErrInvalidInput, index, count)
	}
	dev, err := cudaOpen(index)
	if err != nil {
		return nil, err
	}
	props, err := dev.properties()
	if err != nil {
		return nil, errors.Join(err, dev.release())
	}
	d := &Device{dev: dev, props: props, table: cuda.NewAllocTable[devicePtr](fmt.Sprintf("cuda device %d", index))}
	if o.shareable {
		if err := checkVMM(index); err != nil {
			return nil, errors.Join(err, dev.release())
		}
		if d.granularity, err = dev.vmmGranularity(); err != nil {
			return nil, errors.Join(err, dev.release())
		}
		d.zeros = make([]byte, d.granularity)
		d.vmm = make(map[devicePtr]vmmMem)
	}
	if err := d.loadHashKernel(o); err != nil {
		return nil, errors.Join(err, d.dev.release())
	}
	return d, nil
}

// Properties describes the device. It answers even after Close.
func (d *Device) Properties() cuda.Properties { return d.props }

// MemInfo returns the device's free and total memory as the driver reports
// them; other processes' allocations count against free memory, the launch
// lanes' digest buffers do not (Allocate takes them back when it needs
// them).
func (d *Device) MemInfo() (free, total int64, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.table.Usable("meminfo"); err != nil {
		return 0, 0, err
	}
	free, total, res := d.dev.memInfo()
	if res != cudaSuccess {
		return 0, 0, cudaError(d.dev.index, "cuMemGetInfo", res)
	}
	return free + d.reserved.Load(), total, nil
}

// Allocate reserves size bytes of device memory with cuMemAlloc, or on a
// device opened WithShareable a virtual memory allocation of size rounded
// up to the allocation granularity. If the driver is out of memory, the
// launch lanes not hashing now give up their digest buffers (HashStats
// counts the hashes that then run on the host) and the allocation is tried
// once more.
func (d *Device) Allocate(size int64) (cuda.Handle, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.table.Usable("allocate"); err != nil {
		return 0, err
	}
	if err := d.table.CheckSize(size); err != nil {
		return 0, err
	}
	if size > d.props.TotalMemory {
		return 0, d.insufficientLocked(size)
	}
	ptr, mem, res, op := d.allocLocked(size)
	if res == cudaErrorOutOfMemory {
		freed, err := d.yieldBuffers()
		if err != nil {
			return 0, err
		}
		if freed {
			ptr, mem, res, op = d.allocLocked(size)
		}
	}
	switch res {
	case cudaSuccess:
	case cudaErrorOutOfMemory:
		return 0, d.insufficientLocked(size)
	default:
		return 0, cudaError(d.dev.index, fmt.Sprintf("%s %d bytes", op, size), res)
	}
	if d.vmm != nil {
		// The padding may hold an earlier allocation's bytes; a client
		// granted this one maps it too.
		if pad := mem.size - size; pad > 0 {
			if res := d.dev.copyToDevice(ptr, size, d.zeros[:pad]); res != cudaSuccess {
				return 0, errors.Join(cudaError(d.dev.index, fmt.Sprintf("cuMemcpyHtoD clearing %d bytes of padding", pad), res), d.dev.vmmUnmap(ptr, mem))
			}
		}
		d.vmm[ptr] = mem
	}
	return d.table.Add(size, ptr), nil
}

// allocLocked makes one allocation of size bytes: cuMemAlloc, or a
// shareable one rounded up to the granularity. op names the call that
// failed.
func (d *Device) allocLocked(size int64) (devicePtr, vmmMem, cudaResult, string) {
	if d.vmm == nil {
		const op = "cuMemAlloc"
		ptr, res := d.dev.alloc(size)
		return ptr, vmmMem{}, res, op
	}
	return d.dev.vmmAlloc((size + d.granularity - 1) / d.granularity * d.granularity)
}

// insufficientLocked reports a refused allocation with the memory free now.
func (d *Device) insufficientLocked(size int64) error {
	free, _, res := d.dev.memInfo()
	if res != cudaSuccess {
		free = 0
	}
	free += d.reserved.Load()
	return &messages.InsufficientVRAMError{Device: d.dev.index, Needed: size, Available: free}
}

// Free releases an allocation, after any copy under way on it.
func (d *Device) Free(h cuda.Handle) error {
	d.mu.Lock()
	a, err := d.table.Remove(h)
	d.mu.Unlock()
	if err != nil {
		return err
	}
	err = d.release(a)
	d.regrow.Store(true)
	return err
}

// release frees a's memory once no copy is using it: a shareable
// allocation is unmapped, its address range freed and its handle released.
func (d *Device) release(a *cuda.Allocation[devicePtr]) error {
	return a.Release(func(ptr devicePtr) error {
		d.mu.Lock()
		mem, shared := d.vmm[ptr]
		delete(d.vmm, ptr)
		d.mu.Unlock()
		if shared {
			return d.dev.vmmUnmap(ptr, mem)
		}
		if res := d.dev.free(ptr); res != cudaSuccess {
			return cudaError(d.dev.index, "cuMemFree", res)
		}
		return nil
	})
}

// Write copies p into the allocation at offset with cuMemcpyHtoD.
func (d *Device) Write(h cuda.Handle, offset int64, p []byte) error {
	a, err := d.lookup("write", h, offset, int64(len(p)))
	if err != nil || len(p) == 0 {
		return err
	}
	return a.Shared(d.table.Name(), "write", h, func(ptr devicePtr) error {
		if res := d.dev.copyToDevice(ptr, offset, p); res != cudaSuccess {
			return cudaError(d.dev.index, fmt.Sprintf("cuMemcpyHtoD %d bytes at offset %d", len(p), offset), res)
		}
		return nil
	})
}

// Read copies len(p) bytes of the allocation at offset into p with
// cuMemcpyDtoH.
func (d *Device) Read(h cuda.Handle, offset int64, p []byte) error {
	a, err := d.lookup("read", h, offset, int64(len(p)))
	if err != nil || len(p) == 0 {
		return err
	}
	return a.Shared(d.table.Name(), "read", h, func(ptr devicePtr) error {
		if res := d.dev.copyFromDevice(p, ptr, offset); res != cudaSuccess {
			return cudaError(d.dev.index, fmt.Sprintf("cuMemcpyDtoH %d bytes at offset %d", len(p), offset), res)
		}
		return nil
	})
}

// Close frees every outstanding allocation, waiting for copies and hashes
// under way, frees the launch lanes' digest buffers and streams, unloads the
// kernel and releases the primary context. Later calls other than Close,
// Properties, Outstanding and HashStats fail with messages.ErrStopped. It
// is idempotent.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.table.Closed() {
		d.mu.Unlock()
		return nil
	}
	left := d.table.Close()
	d.mu.Unlock()

	var errs []error
	for _, a := range left {
		errs = append(errs, d.release(a))
	}
	if d.HashesOnDevice() {
		errs = append(errs, d.closeLanes(), d.dev.unloadKernel(d.kernel))
	}
	errs = append(errs, d.dev.release())
	return errors.Join(errs...)
}

// Outstanding returns the number of live allocations. It answers after Close.
func (d *Device) Outstanding() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.table.Count()
}

// lookup finds a live allocation and checks that [offset, offset+n) lies
// within it.
func (d *Device) lookup(op string, h cuda.Handle, offset, n int64) (*cuda.Allocation[devicePtr], error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.table.Within(op, h, offset, n)
}

// formatGPUUUID writes a 16-byte device UUID as NVIDIA's tools do:
// "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
func formatGPUUUID(b []byte) string {
	if len(b) != 16 {
		return ""
	}
	return fmt.Sprintf("GPU-%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
