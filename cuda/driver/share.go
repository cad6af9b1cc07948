package driver

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
)

var (
	_ cuda.Sharer         = (*Device)(nil)
	_ cuda.SharedImporter = (*Device)(nil)
)

// Shareable reports whether the device was opened WithShareable.
func (d *Device) Shareable() bool { return d.granularity > 0 }

// Share returns a new POSIX descriptor of allocation h's memory
// (cuMemExportToShareableHandle), of kind cuda.ShareCUDAVMM: another
// process imports it and maps MapSize bytes, the allocation's size rounded
// up to the granularity, with the allocation at offset 0. It fails with
// messages.ErrInvalidInput for a handle that is not live or on a device not
// opened WithShareable.
func (d *Device) Share(h cuda.Handle) (cuda.Shared, error) {
	a, err := d.lookup("share", h, 0, 0)
	if err != nil {
		return cuda.Shared{}, err
	}
	var shared cuda.Shared
	err = a.Shared(d.table.Name(), "share", h, func(ptr devicePtr) error {
		d.mu.Lock()
		mem, ok := d.vmm[ptr]
		d.mu.Unlock()
		if !ok {
			return fmt.Errorf("%w: cuda device %d: share handle %d: the device was not opened shareable", messages.ErrInvalidInput, d.dev.index, h)
		}
		f, err := d.dev.vmmExport(mem)
		if err != nil {
			return err
		}
		shared = cuda.Shared{File: f, Kind: cuda.ShareCUDAVMM, MapSize: mem.size}
		return nil
	})
	return shared, err
}

// ImportShared maps a descriptor from Share read-only in d's context, as
// another process would with Import. It is how the contract suite reads a
// shared allocation back; the mapping must be closed before d.
func (d *Device) ImportShared(s cuda.Shared) (cuda.SharedMapping, error) {
	d.mu.Lock()
	err := d.table.Usable("import")
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return mapShared(d.dev, false, s)
}

// Import maps a cuda-vmm-fd descriptor that another process shared
// (cuda.ShareCUDAVMM) read-only, in the primary context of the device whose
// UUID is uuid (as cuda.Properties.UUID gives it), as a client of the
// share protocol does: cuMemImportFromShareableHandle,
// cuMemAddressReserve, cuMemMap and cuMemSetAccess with
// CU_MEM_ACCESS_FLAGS_PROT_READ. s.File stays the caller's and may be
// closed at once. It fails with ErrNoDriver without a driver, ErrNoVMM
// when the driver or that device lacks virtual memory management, and
// messages.ErrInvalidInput for another kind of descriptor or a UUID no
// device has.
func Import(uuid string, s cuda.Shared) (*Mapping, error) {
	count, err := cudaDeviceCount()
	if err != nil {
		return nil, err
	}
	for i := range count {
		// Only the device that matches gets a context: one costs memory
		// and time on every GPU it is made on.
		id, err := cudaDeviceUUID(i)
		if err != nil {
			return nil, err
		}
		if id != uuid || uuid == "" {
			continue
		}
		if err := checkVMM(i); err != nil {
			return nil, err
		}
		dev, err := cudaOpen(i)
		if err != nil {
			return nil, err
		}
		m, err := mapShared(dev, true, s)
		if err != nil {
			return nil, errors.Join(err, dev.release())
		}
		return m, nil
	}
	return nil, fmt.Errorf("%w: no cuda device has UUID %q (%d devices)", messages.ErrInvalidInput, uuid, count)
}

// Mapping is a shared CUDA virtual memory allocation mapped read-only into
// this process's device address space. It is safe for concurrent use.
type Mapping struct {
	dev cudaDevice
	// own says the mapping retained the primary context itself (Import),
	// so Close releases it.
	own bool
	mem vmmMem

	mu     sync.RWMutex
	ptr    devicePtr
	closed bool
}

var _ cuda.SharedMapping = (*Mapping)(nil)

// mapShared imports and maps s read-only in dev's context.
func mapShared(dev cudaDevice, own bool, s cuda.Shared) (*Mapping, error) {
	if s.Kind != cuda.ShareCUDAVMM || s.File == nil || s.MapSize <= 0 {
		return nil, fmt.Errorf("%w: cuda device %d: import: a %q descriptor of %d bytes is not a CUDA VMM allocation's", messages.ErrInvalidInput, dev.index, s.Kind, s.MapSize)
	}
	ptr, mem, err := dev.vmmImport(int(s.File.Fd()), s.MapSize)
	runtime.KeepAlive(s.File)
	if err != nil {
		return nil, err
	}
	return &Mapping{dev: dev, own: own, mem: mem, ptr: ptr}, nil
}

// Size returns the mapping's size, Shared.MapSize.
func (m *Mapping) Size() int64 { return m.mem.size }

// ReadAt copies len(p) bytes from offset off of the mapping into p with
// cuMemcpyDtoH; past the end it copies what there is and returns io.EOF.
func (m *Mapping) ReadAt(p []byte, off int64) (int, error) {
	n, err := m.span("read", p, off)
	if n == 0 {
		return 0, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return 0, fmt.Errorf("%w: cuda device %d: read of a closed mapping", messages.ErrStopped, m.dev.index)
	}
	if res := m.dev.copyFromDevice(p[:n], m.ptr, off); res != cudaSuccess {
		return 0, cudaError(m.dev.index, fmt.Sprintf("cuMemcpyDtoH %d bytes of a shared mapping", n), res)
	}
	return n, err
}

// WriteAt tries to write p at offset off through the mapping with
// cuMemcpyHtoD, to see what the driver does with a write to read-only
// memory: it returns the driver's error, which it should give. On a GPU a
// refused write may leave the context unusable, so try it last.
func (m *Mapping) WriteAt(p []byte, off int64) (int, error) {
	n, err := m.span("write", p, off)
	if n == 0 {
		return 0, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return 0, fmt.Errorf("%w: cuda device %d: write to a closed mapping", messages.ErrStopped, m.dev.index)
	}
	if res := m.dev.copyToDevice(m.ptr, off, p[:n]); res != cudaSuccess {
		return 0, cudaError(m.dev.index, fmt.Sprintf("cuMemcpyHtoD %d bytes into a read-only shared mapping", n), res)
	}
	return n, err
}

// span returns how many bytes of a len(p)-byte copy at off lie within the
// mapping, and io.EOF if not all do.
func (m *Mapping) span(op string, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: cuda device %d: %s at negative offset %d", messages.ErrInvalidInput, m.dev.index, op, off)
	}
	if off >= m.mem.size {
		return 0, io.EOF
	}
	if int64(len(p)) > m.mem.size-off {
		return int(m.mem.size - off), io.EOF
	}
	return len(p), nil
}

// Close unmaps the mapping and releases its handle, and the primary context
// if Import retained it. It is idempotent.
func (m *Mapping) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	err := m.dev.vmmUnmap(m.ptr, m.mem)
	if m.own {
		err = errors.Join(err, m.dev.release())
	}
	return err
}
