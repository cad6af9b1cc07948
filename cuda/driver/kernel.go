package driver

import (
	_ "embed" // the kernel's PTX and cubins
	"errors"
	"fmt"
	"log/slog"
)

// sha256PTX is the SHA-256 kernel, compiled from kernel/sha256.c by
// kernel/build_ptx.sh, for sm_80. The driver JIT-compiles it for a GPU no
// cubin matches.
//
//go:embed kernel/sha256.ptx
var sha256PTX []byte

// The same kernel assembled from sha256PTX by kernel/build_cubins.sh (ptxas
// 11.8): machine code a GPU of the same major compute capability and at
// least the same minor one runs as it is, with no JIT.
var (
	//go:embed kernel/sha256_sm80.cubin
	sha256SM80 []byte
	//go:embed kernel/sha256_sm90.cubin
	sha256SM90 []byte
)

// kernelImage is one form of the kernel that a device may load.
type kernelImage struct {
	name string // for logs: "sm_90 cubin", "PTX"
	data []byte
}

// kernelImages returns what to try loading on a GPU of compute capability
// major.minor, in order: the cubin it runs, if one does, then the PTX.
func kernelImages(major, minor int) []kernelImage {
	ptx := kernelImage{"PTX", sha256PTX}
	for _, c := range []struct {
		major, minor int
		image        kernelImage
	}{
		{8, 0, kernelImage{"sm_80 cubin", sha256SM80}},
		{9, 0, kernelImage{"sm_90 cubin", sha256SM90}},
	} {
		if major == c.major && minor >= c.minor {
			return []kernelImage{c.image, ptx}
		}
	}
	return []kernelImage{ptx}
}

// sha256Entry is the kernel's entry point in every image.
const sha256Entry = "vs_sha256_spans"

// hashThreads is how many threads, one per chunk, a block of the kernel's
// grid has.
const hashThreads = 128

// Option configures Open.
type Option func(*driverOptions)

// driverOptions are what DriverOptions set.
type driverOptions struct {
	log       *slog.Logger
	images    func(major, minor int) []kernelImage
	shareable bool
}

// WithShareable makes every allocation shareable with another process
// (cuda.Sharer): a CUDA virtual memory allocation (cuMemCreate with the
// POSIX file-descriptor handle type, its size rounded up to the allocation
// granularity) instead of cuMemAlloc memory. Open then fails with ErrNoVMM
// if the driver lacks the virtual memory management calls.
func WithShareable() Option {
	return func(o *driverOptions) { o.shareable = true }
}

// WithLogger sends the driver's log lines (which kernel loaded and how, or
// why none did) to log instead of slog.Default().
func WithLogger(log *slog.Logger) Option {
	return func(o *driverOptions) { o.log = log }
}

// withKernelPTX loads ptx as the SHA-256 kernel instead of the embedded
// images, so tests can make it fail to load.
func withKernelPTX(ptx []byte) Option {
	return func(o *driverOptions) {
		o.images = func(int, int) []kernelImage { return []kernelImage{{"PTX", ptx}} }
	}
}

// withKernelImages chooses the images to try as images does, so tests can
// offer a cubin the device does not run.
func withKernelImages(images func(major, minor int) []kernelImage) Option {
	return func(o *driverOptions) { o.images = images }
}

// loadHashKernel loads the SHA-256 kernel into the device's context, the
// first of its images that loads, and opens its launch lanes. It logs which
// image loaded, with the driver version, the kernel's registers and local
// memory and the JIT's info log, or why none did; then the driver hashes by
// copying chunks out. It fails only if the lanes cannot be opened, having
// unloaded the kernel.
func (d *Device) loadHashKernel(o driverOptions) error {
	log := o.log.With("device", d.dev.index)
	version, err := driverVersion()
	if err != nil {
		log.Warn("CUDA driver version unknown", "err", err)
	} else {
		log = log.With("cuda_driver_version", fmt.Sprintf("%d.%d", version/1000, version%1000/10))
	}
	var errs []error
	for _, image := range o.images(d.props.ComputeMajor, d.props.ComputeMinor) {
		k, logs, err := d.dev.loadKernel(image.data, sha256Entry)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", image.name, err))
			continue
		}
		d.kernel, d.kernelImage = k, image.name
		d.logKernel(log, logs, errors.Join(errs...))
		if err := d.openLanes(); err != nil {
			return errors.Join(err, d.dev.unloadKernel(d.kernel))
		}
		return nil
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("no kernel image to load"))
	}
	d.kernelErr = errors.Join(errs...)
	log.Warn("SHA-256 kernel did not load; hashing on the host by copying chunks out", "err", d.kernelErr)
	return nil
}

// logKernel logs the kernel that loaded: its image, registers, local memory
// and the most threads a block may have, the JIT's info log, and why any
// image before it did not load.
func (d *Device) logKernel(log *slog.Logger, logs jitLogs, skipped error) {
	attrs := []any{"name", d.props.Name, "image", d.kernelImage, "compute_capability", fmt.Sprintf("%d.%d", d.props.ComputeMajor, d.props.ComputeMinor)}
	for _, a := range []struct {
		key  string
		attr int
	}{{"registers", cuFuncNumRegs}, {"local_bytes", cuFuncLocalSizeBytes}, {"max_threads_per_block", cuFuncMaxThreadsPerBlock}} {
		v, err := d.dev.kernelAttribute(d.kernel, a.attr)
		if err != nil {
			log.Warn("SHA-256 kernel attribute unknown", "attribute", a.key, "err", err)
			continue
		}
		attrs = append(attrs, a.key, v)
	}
	if logs.info != "" {
		attrs = append(attrs, "jit_info_log", logs.info)
	}
	if skipped != nil {
		attrs = append(attrs, "skipped", skipped.Error())
	}
	log.Info("SHA-256 kernel loaded", attrs...)
}

// HashesOnDevice reports whether HashChunks runs the SHA-256 kernel on the
// GPU (the kernel loaded when the device opened) rather than copying chunks
// out to hash them on the host.
func (d *Device) HashesOnDevice() bool { return d.kernelErr == nil }

// KernelImage names the form of the SHA-256 kernel the device loaded, such
// as "sm_90 cubin" or "PTX" (compiled by the driver's JIT), or is empty if
// none loaded.
func (d *Device) KernelImage() string { return d.kernelImage }
