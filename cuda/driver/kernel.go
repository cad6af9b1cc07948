package driver

import (
	_ "embed" // the kernel's PTX
	"errors"
	"log/slog"
)

// sha256PTX is the SHA-256 kernel, compiled from kernel/sha256.c by
// kernel/build_ptx.sh. The driver compiles it for the GPU it finds.
//
//go:embed kernel/sha256.ptx
var sha256PTX []byte

// sha256Entry is the kernel's entry point in sha256PTX.
const sha256Entry = "vs_sha256_spans"

// hashThreads is how many threads, one per chunk, a block of the kernel's
// grid has.
const hashThreads = 128

// Option configures Open.
type Option func(*driverOptions)

// driverOptions are what DriverOptions set.
type driverOptions struct {
	log *slog.Logger
	ptx []byte
}

// WithLogger sends the driver's log lines (a SHA-256 kernel that does not
// load) to log instead of slog.Default().
func WithLogger(log *slog.Logger) Option {
	return func(o *driverOptions) { o.log = log }
}

// withKernelPTX loads ptx as the SHA-256 kernel instead of the embedded one,
// so tests can make it fail to load.
func withKernelPTX(ptx []byte) Option {
	return func(o *driverOptions) { o.ptx = ptx }
}

// loadHashKernel loads the SHA-256 kernel into the device's context and
// opens its launch lanes. If it does not load, it logs why, once for the
// device, and the driver hashes by copying chunks out. It fails only if the
// lanes cannot be opened, having unloaded the kernel.
func (d *Device) loadHashKernel(o driverOptions) error {
	d.kernel, d.kernelErr = d.dev.loadKernel(o.ptx, sha256Entry)
	if d.kernelErr != nil {
		o.log.Warn("SHA-256 kernel did not load; hashing on the host by copying chunks out",
			"device", d.dev.index, "err", d.kernelErr)
		return nil
	}
	if err := d.openLanes(); err != nil {
		return errors.Join(err, d.dev.unloadKernel(d.kernel))
	}
	return nil
}

// HashesOnDevice reports whether HashChunks runs the SHA-256 kernel on the
// GPU (the kernel loaded when the device opened) rather than copying chunks
// out to hash them on the host.
func (d *Device) HashesOnDevice() bool { return d.kernelErr == nil }
