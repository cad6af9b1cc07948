package driver

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>

// The few CUDA driver API types the backend needs, declared here so that no
// CUDA header is needed at build time. They match cuda.h on 64-bit Linux.
typedef int vs_CUresult;
typedef int vs_CUdevice;
typedef void *vs_CUcontext;
typedef unsigned long long vs_CUdeviceptr;
typedef struct { unsigned char bytes[16]; } vs_CUuuid;
typedef void *vs_CUmodule;
typedef void *vs_CUfunction;
typedef void *vs_CUstream;
typedef unsigned long long vs_CUmemHandle; // CUmemGenericAllocationHandle
typedef struct { int type; int id; } vs_CUmemLocation;
typedef struct {
	int type;
	int requestedHandleTypes;
	vs_CUmemLocation location;
	void *win32HandleMetaData;
	struct {
		unsigned char compressionType;
		unsigned char gpuDirectRDMACapable;
		unsigned short usage;
		unsigned char reserved[4];
	} allocFlags;
} vs_CUmemAllocationProp;
typedef struct { vs_CUmemLocation location; int flags; } vs_CUmemAccessDesc;

static vs_CUresult (*vs_cuInit)(unsigned int);
static vs_CUresult (*vs_cuGetErrorName)(vs_CUresult, const char **);
static vs_CUresult (*vs_cuDeviceGetCount)(int *);
static vs_CUresult (*vs_cuDeviceGet)(vs_CUdevice *, int);
static vs_CUresult (*vs_cuDeviceGetName)(char *, int, vs_CUdevice);
static vs_CUresult (*vs_cuDeviceGetUuid)(vs_CUuuid *, vs_CUdevice);
static vs_CUresult (*vs_cuDriverGetVersion)(int *);
static vs_CUresult (*vs_cuDeviceTotalMem)(size_t *, vs_CUdevice);
static vs_CUresult (*vs_cuDeviceGetAttribute)(int *, int, vs_CUdevice);
static vs_CUresult (*vs_cuDevicePrimaryCtxRetain)(vs_CUcontext *, vs_CUdevice);
static vs_CUresult (*vs_cuDevicePrimaryCtxRelease)(vs_CUdevice);
static vs_CUresult (*vs_cuCtxSetCurrent)(vs_CUcontext);
static vs_CUresult (*vs_cuMemAlloc)(vs_CUdeviceptr *, size_t);
static vs_CUresult (*vs_cuMemFree)(vs_CUdeviceptr);
static vs_CUresult (*vs_cuMemcpyHtoD)(vs_CUdeviceptr, const void *, size_t);
static vs_CUresult (*vs_cuMemcpyDtoH)(void *, vs_CUdeviceptr, size_t);
static vs_CUresult (*vs_cuMemGetInfo)(size_t *, size_t *);
static vs_CUresult (*vs_cuModuleLoadDataEx)(vs_CUmodule *, const void *, unsigned int, int *, void **);
static vs_CUresult (*vs_cuFuncGetAttribute)(int *, int, vs_CUfunction);
static vs_CUresult (*vs_cuModuleUnload)(vs_CUmodule);
static vs_CUresult (*vs_cuModuleGetFunction)(vs_CUfunction *, vs_CUmodule, const char *);
static vs_CUresult (*vs_cuLaunchKernel)(vs_CUfunction, unsigned int, unsigned int, unsigned int,
	unsigned int, unsigned int, unsigned int, unsigned int, vs_CUstream, void **, void **);
static vs_CUresult (*vs_cuStreamCreate)(vs_CUstream *, unsigned int);
static vs_CUresult (*vs_cuStreamDestroy)(vs_CUstream);
static vs_CUresult (*vs_cuStreamSynchronize)(vs_CUstream);
static vs_CUresult (*vs_cuMemcpyHtoDAsync)(vs_CUdeviceptr, const void *, size_t, vs_CUstream);
static vs_CUresult (*vs_cuMemcpyDtoHAsync)(void *, vs_CUdeviceptr, size_t, vs_CUstream);

// The virtual memory management calls, optional (vs_vmm says whether all
// of them resolved): shareable allocations need them.
static int vs_vmm;
static vs_CUresult (*vs_cuMemGetAllocationGranularity)(size_t *, const vs_CUmemAllocationProp *, int);
static vs_CUresult (*vs_cuMemCreate)(vs_CUmemHandle *, size_t, const vs_CUmemAllocationProp *, unsigned long long);
static vs_CUresult (*vs_cuMemRelease)(vs_CUmemHandle);
static vs_CUresult (*vs_cuMemAddressReserve)(vs_CUdeviceptr *, size_t, size_t, vs_CUdeviceptr, unsigned long long);
static vs_CUresult (*vs_cuMemAddressFree)(vs_CUdeviceptr, size_t);
static vs_CUresult (*vs_cuMemMap)(vs_CUdeviceptr, size_t, size_t, vs_CUmemHandle, unsigned long long);
static vs_CUresult (*vs_cuMemUnmap)(vs_CUdeviceptr, size_t);
static vs_CUresult (*vs_cuMemSetAccess)(vs_CUdeviceptr, size_t, const vs_CUmemAccessDesc *, size_t);
static vs_CUresult (*vs_cuMemExportToShareableHandle)(void *, vs_CUmemHandle, int, unsigned long long);
static vs_CUresult (*vs_cuMemImportFromShareableHandle)(vs_CUmemHandle *, void *, int);

// vs_sym resolves name in lib into *fn; it reports whether it was found.
static int vs_sym(void *lib, void **fn, const char *name) {
	*fn = dlsym(lib, name);
	return *fn != NULL;
}

// vs_load opens libcuda.so.1 and resolves every entry point the backend uses.
// It returns 0 on success, 1 when the library cannot be opened, and 2 when an
// entry point is missing (then *missing names it and the library is closed).
// cuDeviceGetUuid_v2 (CUDA 11.4 on: a MIG instance's own UUID, as NVML
// gives it, where the first version gives the parent GPU's) is used where
// present, else cuDeviceGetUuid; both are optional. So are the virtual
// memory management calls (CUDA 10.2 on), all or none: vs_vmm says which.
// The library is never
// closed after success: the CUDA driver does not support being unloaded.
static int vs_load(const char **missing) {
	void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		return 1;
	}
	struct { void **fn; const char *name; } syms[] = {
		{(void **)&vs_cuInit, "cuInit"},
		{(void **)&vs_cuGetErrorName, "cuGetErrorName"},
		{(void **)&vs_cuDeviceGetCount, "cuDeviceGetCount"},
		{(void **)&vs_cuDeviceGet, "cuDeviceGet"},
		{(void **)&vs_cuDeviceGetName, "cuDeviceGetName"},
		{(void **)&vs_cuDeviceTotalMem, "cuDeviceTotalMem_v2"},
		{(void **)&vs_cuDeviceGetAttribute, "cuDeviceGetAttribute"},
		{(void **)&vs_cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"},
		{(void **)&vs_cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"},
		{(void **)&vs_cuCtxSetCurrent, "cuCtxSetCurrent"},
		{(void **)&vs_cuMemAlloc, "cuMemAlloc_v2"},
		{(void **)&vs_cuMemFree, "cuMemFree_v2"},
		{(void **)&vs_cuMemcpyHtoD, "cuMemcpyHtoD_v2"},
		{(void **)&vs_cuMemcpyDtoH, "cuMemcpyDtoH_v2"},
		{(void **)&vs_cuMemGetInfo, "cuMemGetInfo_v2"},
		{(void **)&vs_cuDriverGetVersion, "cuDriverGetVersion"},
		{(void **)&vs_cuModuleLoadDataEx, "cuModuleLoadDataEx"},
		{(void **)&vs_cuFuncGetAttribute, "cuFuncGetAttribute"},
		{(void **)&vs_cuModuleUnload, "cuModuleUnload"},
		{(void **)&vs_cuModuleGetFunction, "cuModuleGetFunction"},
		{(void **)&vs_cuLaunchKernel, "cuLaunchKernel"},
		{(void **)&vs_cuStreamCreate, "cuStreamCreate"},
		{(void **)&vs_cuStreamDestroy, "cuStreamDestroy_v2"},
		{(void **)&vs_cuStreamSynchronize, "cuStreamSynchronize"},
		{(void **)&vs_cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"},
		{(void **)&vs_cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"},
	};
	for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
		if (vs_sym(lib, syms[i].fn, syms[i].name)) {
			continue;
		}
		// Drivers before CUDA 11 have only the first version.
		if (syms[i].fn == (void **)&vs_cuDevicePrimaryCtxRelease &&
		    vs_sym(lib, syms[i].fn, "cuDevicePrimaryCtxRelease")) {
			continue;
		}
		*missing = syms[i].name;
		dlclose(lib);
		return 2;
	}
	if (!vs_sym(lib, (void **)&vs_cuDeviceGetUuid, "cuDeviceGetUuid_v2")) {
		vs_sym(lib, (void **)&vs_cuDeviceGetUuid, "cuDeviceGetUuid");
	}
	struct { void **fn; const char *name; } vmm[] = {
		{(void **)&vs_cuMemGetAllocationGranularity, "cuMemGetAllocationGranularity"},
		{(void **)&vs_cuMemCreate, "cuMemCreate"},
		{(void **)&vs_cuMemRelease, "cuMemRelease"},
		{(void **)&vs_cuMemAddressReserve, "cuMemAddressReserve"},
		{(void **)&vs_cuMemAddressFree, "cuMemAddressFree"},
		{(void **)&vs_cuMemMap, "cuMemMap"},
		{(void **)&vs_cuMemUnmap, "cuMemUnmap"},
		{(void **)&vs_cuMemSetAccess, "cuMemSetAccess"},
		{(void **)&vs_cuMemExportToShareableHandle, "cuMemExportToShareableHandle"},
		{(void **)&vs_cuMemImportFromShareableHandle, "cuMemImportFromShareableHandle"},
	};
	vs_vmm = 1;
	for (size_t i = 0; i < sizeof vmm / sizeof vmm[0]; i++) {
		vs_vmm = vs_vmm && vs_sym(lib, vmm[i].fn, vmm[i].name);
	}
	return 0;
}

static int vs_has_vmm(void) { return vs_vmm; }

static vs_CUresult vs_init(void) { return vs_cuInit(0); }
static vs_CUresult vs_driver_version(int *v) { return vs_cuDriverGetVersion(v); }

static const char *vs_error_name(vs_CUresult r) {
	const char *name = NULL;
	if (vs_cuGetErrorName(r, &name) != 0) {
		return NULL;
	}
	return name;
}

static vs_CUresult vs_device_count(int *count) { return vs_cuDeviceGetCount(count); }
static vs_CUresult vs_device_get(vs_CUdevice *dev, int ordinal) { return vs_cuDeviceGet(dev, ordinal); }
static vs_CUresult vs_device_name(char *name, int len, vs_CUdevice dev) { return vs_cuDeviceGetName(name, len, dev); }
static vs_CUresult vs_device_total_mem(size_t *bytes, vs_CUdevice dev) { return vs_cuDeviceTotalMem(bytes, dev); }
static vs_CUresult vs_device_attribute(int *value, int attr, vs_CUdevice dev) { return vs_cuDeviceGetAttribute(value, attr, dev); }
static vs_CUresult vs_primary_ctx_retain(vs_CUcontext *ctx, vs_CUdevice dev) { return vs_cuDevicePrimaryCtxRetain(ctx, dev); }
static vs_CUresult vs_primary_ctx_release(vs_CUdevice dev) { return vs_cuDevicePrimaryCtxRelease(dev); }

// vs_device_uuid fills uuid; it reports CUDA_ERROR_NOT_SUPPORTED (801) when
// the driver lacks cuDeviceGetUuid.
static vs_CUresult vs_device_uuid(vs_CUuuid *uuid, vs_CUdevice dev) {
	if (vs_cuDeviceGetUuid == NULL) {
		return 801;
	}
	return vs_cuDeviceGetUuid(uuid, dev);
}

// The memory calls below make ctx current on the calling thread first. A cgo
// call runs start to finish on one OS thread, so the context is current for
// the call that follows, whichever thread Go chose.

static vs_CUresult vs_mem_alloc(vs_CUcontext ctx, vs_CUdeviceptr *ptr, size_t size) {
	vs_CUresult r = vs_cuCtxSetCurrent(ctx);
	return r != 0 ? r : vs_cuMemAlloc(ptr, size);
}

static vs_CUresult vs_mem_free(vs_CUcontext ctx, vs_CUdeviceptr ptr) {
	vs_CUresult r = vs_cuCtxSetCurrent(ctx);
	return r != 0 ? r : vs_cuMemFree(ptr);
}

static vs_CUresult vs_copy_to_device(vs_CUcontext ctx, vs_CUdeviceptr base, size_t offset, const void *src, size_t n) {
	vs_CUresult r = vs_cuCtxSetCurrent(ctx);
	return r != 0 ? r : vs_cuMemcpyHtoD(base + offset, src, n);
}

static vs_CUresult vs_copy_from_device(vs_CUcontext ctx, void *dst, vs_CUdeviceptr base, size_t offset, size_t n) {
	vs_CUresult r = vs_cuCtxSetCurrent(ctx);
	return r != 0 ? r : vs_cuMemcpyDtoH(dst, base + offset, n);
}

static vs_CUresult vs_mem_info(vs_CUcontext ctx, size_t *free, size_t *total) {
	vs_CUresult r = vs_cuCtxSetCurrent(ctx);
	return r != 0 ? r : vs_cuMemGetInfo(free, total);
}

// CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, CU_MEM_LOCATION_TYPE_DEVICE,
// CU_MEM_ALLOCATION_TYPE_PINNED.
#define vs_handle_posix_fd 1
#define vs_location_device 1
#define vs_allocation_pinned 1

// vs_shareable_prop describes a shareable allocation on dev: device
// memory, exportable as a POSIX file descriptor.
static vs_CUmemAllocationProp vs_shareable_prop(vs_CUdevice dev) {
	vs_CUmemAllocationProp prop = {0};
	prop.type = vs_allocation_pinned;
	prop.requestedHandleTypes = vs_handle_posix_fd;
	prop.location.type = vs_location_device;
	prop.location.id = dev;
	return prop;
}

// vs_vmm_granularity asks the minimum granularity of a shareable
// allocation on dev.
static vs_CUresult vs_vmm_granularity(vs_CUcontext ctx, vs_CUdevice dev, size_t *granularity) {
	vs_CUresult r = vs_cuCtxSetCurrent(ctx);
	if (r != 0) return r;
	vs_CUmemAllocationProp prop = vs_shareable_prop(dev);
	return vs_cuMemGetAllocationGranularity(granularity, &prop, 0); // CU_MEM_ALLOC_GRANULARITY_MINIMUM
}

// vs_vmm_unmap undoes what vs_vmm_map did, in order: cuMemUnmap,
// cuMemAddressFree, cuMemRelease. Each is tried even after one before it
// failed, so that what can be freed is (the driver frees released memory
// once its last mapping goes); the first failure is returned, and *stage
// says which call it was (0 cuCtxSetCurrent, then 1, 2, 3).
static vs_CUresult vs_vmm_unmap(vs_CUcontext ctx, vs_CUdeviceptr ptr, size_t size, vs_CUmemHandle handle, int *stage) {
	*stage = 0;
	vs_CUresult r = vs_cuCtxSetCurrent(ctx);
	if (r != 0) return r;
	vs_CUresult rs[3];
	rs[0] = vs_cuMemUnmap(ptr, size);
	rs[1] = vs_cuMemAddressFree(ptr, size);
	rs[2] = vs_cuMemRelease(handle);
	for (int i = 0; i < 3; i++) {
		if (rs[i] != 0) {
			*stage = i + 1;
			return rs[i];
		}
	}
	return 0;
}

// vs_vmm_map reserves size bytes of address space, maps handle there and
// gives dev the access flags (1 read, 3 read-write). If fd is not negative,
// handle is first imported from that descriptor (which stays the
// caller's); otherwise it is the caller's. *stage says which call failed:
// 0 cuCtxSetCurrent, 1 cuMemImportFromShareableHandle, 2
// cuMemAddressReserve, 3 cuMemMap, 4 cuMemSetAccess. On failure nothing is left reserved, mapped or imported.
static vs_CUresult vs_vmm_map(vs_CUcontext ctx, vs_CUdevice dev, int fd, size_t size, int flags,
                              vs_CUmemHandle *handle, vs_CUdeviceptr *ptr, int *stage) {
	*stage = 0;
	vs_CUresult r = vs_cuCtxSetCurrent(ctx);
	if (r != 0) return r;
	*stage = 1;
	if (fd >= 0 && (r = vs_cuMemImportFromShareableHandle(handle, (void *)(size_t)fd, vs_handle_posix_fd)) != 0) return r;
	*stage = 2;
	if ((r = vs_cuMemAddressReserve(ptr, size, 0, 0, 0)) == 0) {
		*stage = 3;
		if ((r = vs_cuMemMap(*ptr, size, 0, *handle, 0)) == 0) {
			*stage = 4;
			vs_CUmemAccessDesc access = {{vs_location_device, dev}, flags};
			if ((r = vs_cuMemSetAccess(*ptr, size, &access, 1)) == 0) return 0;
			vs_cuMemUnmap(*ptr, size);
		}
		vs_cuMemAddressFree(*ptr, size);
	}
	if (fd >= 0) vs_cuMemRelease(*handle);
	return r;
}

// vs_vmm_alloc makes a shareable allocation of size bytes (a multiple of
// the granularity) on dev: cuMemCreate with the POSIX descriptor handle
// type, then vs_vmm_map read-write. *stage is -1 when cuMemCreate failed,
// else vs_vmm_map's; on failure nothing is left.
static vs_CUresult vs_vmm_alloc(vs_CUcontext ctx, vs_CUdevice dev, size_t size, vs_CUmemHandle *handle,
                                vs_CUdeviceptr *ptr, int *stage) {
	*stage = 0;
	vs_CUresult r = vs_cuCtxSetCurrent(ctx);
	if (r != 0) return r;
	*stage = -1;
	vs_CUmemAllocationProp prop = vs_shareable_prop(dev);
	if ((r = vs_cuMemCreate(handle, size, &prop, 0)) != 0) return r;
	r = vs_vmm_map(ctx, dev, -1, size, 3, handle, ptr, stage);
	if (r != 0) vs_cuMemRelease(*handle);
	return r;
}

// vs_vmm_export writes a new POSIX descriptor of handle's memory to *fd.
static vs_CUresult vs_vmm_export(vs_CUcontext ctx, vs_CUmemHandle handle, int *fd) {
	vs_CUresult r = vs_cuCtxSetCurrent(ctx);
	return r != 0 ? r : vs_cuMemExportToShareableHandle(fd, handle, vs_handle_posix_fd, 0);
}

// vs_log_bytes is the size of each of the JIT's info and error logs.
#define vs_log_bytes 8192

// vs_module_load loads image, PTX (NUL-terminated) or a cubin, with
// cuModuleLoadDataEx, collecting the JIT's info and error logs (each
// vs_log_bytes, NUL-terminated) in info and error, and finds entry in it.
// *stage says which call failed: 0 cuModuleLoadDataEx, 1
// cuModuleGetFunction. A module whose entry is missing is unloaded again.
static vs_CUresult vs_module_load(vs_CUcontext ctx, const void *image, const char *entry,
                                  vs_CUmodule *mod, vs_CUfunction *fn, int *stage, char *info, char *error) {
	*stage = 0;
	info[0] = error[0] = '\0';
	vs_CUresult r = vs_cuCtxSetCurrent(ctx);
	if (r != 0) return r;
	// CU_JIT_INFO_LOG_BUFFER, its size, CU_JIT_ERROR_LOG_BUFFER, its size,
	// CU_JIT_LOG_VERBOSE.
	int opts[] = {3, 4, 5, 6, 12};
	void *vals[] = {info, (void *)(size_t)vs_log_bytes, error, (void *)(size_t)vs_log_bytes, (void *)(size_t)1};
	r = vs_cuModuleLoadDataEx(mod, image, 5, opts, vals);
	info[vs_log_bytes - 1] = error[vs_log_bytes - 1] = '\0';
	if (r != 0) return r;
	*stage = 1;
	r = vs_cuModuleGetFunction(fn, *mod, entry);
	if (r != 0) {
		vs_cuModuleUnload(*mod);
		*mod = NULL;
	}
	return r;
}

// vs_func_attribute reads a CUfunction_attribute of fn.
static vs_CUresult vs_func_attribute(vs_CUcontext ctx, vs_CUfunction fn, int attr, int *value) {
	vs_CUresult r = vs_cuCtxSetCurrent(ctx);
	return r != 0 ? r : vs_cuFuncGetAttribute(value, attr, fn);
}

static vs_CUresult vs_module_unload(vs_CUcontext ctx, vs_CUmodule mod) {
	vs_CUresult r = vs_cuCtxSetCurrent(ctx);
	return r != 0 ? r : vs_cuModuleUnload(mod);
}

// vs_stream_create creates a stream that does not synchronize with the
// legacy default stream (CU_STREAM_NON_BLOCKING), so that one lane's hash
// never waits for another's or for the copies of Read and Write.
static vs_CUresult vs_stream_create(vs_CUcontext ctx, vs_CUstream *stream) {
	vs_CUresult r = vs_cuCtxSetCurrent(ctx);
	return r != 0 ? r : vs_cuStreamCreate(stream, 1);
}

static vs_CUresult vs_stream_destroy(vs_CUcontext ctx, vs_CUstream stream) {
	vs_CUresult r = vs_cuCtxSetCurrent(ctx);
	return r != 0 ? r : vs_cuStreamDestroy(stream);
}

// vs_span is the kernel's span descriptor (struct vs_span in
// kernel/sha256.c).
typedef struct {
	unsigned long long data, length, chunk_size, first;
} vs_span;

// vs_hash_spans runs the SHA-256 kernel fn over span_count spans on stream,
// a grid of blocks blocks of threads threads: it copies the spans to the
// start of buf, a device buffer the caller owns, has the kernel write the
// chunks' digests at buf+digests_at, synchronizes the stream, then copies
// the digests to out (chunks of them) and synchronizes again. *stage says
// which call failed: 0 cuMemcpyHtoDAsync, 1 cuLaunchKernel, 2
// cuStreamSynchronize after the kernel (where a fault in the kernel shows),
// 3 cuMemcpyDtoHAsync, 4 cuStreamSynchronize after the copy.
static vs_CUresult vs_hash_spans(vs_CUcontext ctx, vs_CUfunction fn, vs_CUstream stream, vs_CUdeviceptr buf,
                                 size_t digests_at, const vs_span *spans, unsigned long long span_count,
                                 unsigned long long chunks, unsigned int blocks, unsigned int threads,
                                 void *out, int *stage) {
	*stage = 0;
	vs_CUresult r = vs_cuCtxSetCurrent(ctx);
	if (r == 0) r = vs_cuMemcpyHtoDAsync(buf, spans, span_count * sizeof(vs_span), stream);
	if (r != 0) return r;
	vs_CUdeviceptr dev_spans = buf, digests = buf + digests_at;
	void *params[] = {&dev_spans, &span_count, &chunks, &digests};
	*stage = 1;
	r = vs_cuLaunchKernel(fn, blocks, 1, 1, threads, 1, 1, 0, stream, params, NULL);
	if (r != 0) return r;
	*stage = 2;
	r = vs_cuStreamSynchronize(stream);
	if (r != 0) return r;
	*stage = 3;
	r = vs_cuMemcpyDtoHAsync(out, digests, chunks * 32, stream);
	if (r != 0) return r;
	*stage = 4;
	return vs_cuStreamSynchronize(stream);
}
*/
import "C"

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"

	"github.com/vramseal/vramseal/cuda"
)

// CUdevice_attribute values the backend reads.
const (
	cuAttrIntegrated           = 18
	cuAttrComputeMajor         = 75
	cuAttrComputeMinor         = 76
	cuAttrManagedMemory        = 83
	cuAttrPageableMemoryAccess = 88
	cuAttrVMMSupported         = 102 // CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED
	cuAttrPOSIXFDSupported     = 103 // CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED
)

// deviceNameLen is the buffer cuDeviceGetName fills.
const deviceNameLen = 256

// cudaLib is the CUDA driver library, loaded and initialised once per process.
var cudaLib struct {
	once      sync.Once
	err       error
	noDevices bool
}

// loadCUDA loads libcuda.so.1 and calls cuInit, once. It reports whether the
// driver found no device at all. A missing or stub library wraps ErrNoDriver.
func loadCUDA() (noDevices bool, err error) {
	cudaLib.once.Do(func() {
		var missing *C.char
		switch C.vs_load(&missing) {
		case 0:
		case 1:
			cudaLib.err = fmt.Errorf("%w: libcuda.so.1 could not be loaded", cuda.ErrNoDriver)
			return
		default:
			cudaLib.err = fmt.Errorf("%w: libcuda.so.1 lacks %s; the driver is too old", cuda.ErrNoDriver, C.GoString(missing))
			return
		}
		switch res := C.vs_init(); res {
		case cudaSuccess:
		case cudaErrorNoDevice:
			cudaLib.noDevices = true
		case cudaErrorStubLibrary:
			cudaLib.err = fmt.Errorf("%w: libcuda.so.1 is the CUDA toolkit's stub, not a driver", cuda.ErrNoDriver)
		default:
			cudaLib.err = cudaError(-1, "cuInit", res)
		}
	})
	return cudaLib.noDevices, cudaLib.err
}

// cudaResult is a CUresult, for code outside this file.
type cudaResult = C.vs_CUresult

// cudaError describes a failed call; see cudaResultError.
func cudaError(device int, op string, res C.vs_CUresult) error {
	name := ""
	if p := C.vs_error_name(res); p != nil {
		name = C.GoString(p)
	}
	return cudaResultError(device, op, int(res), name)
}

// cudaDeviceCount returns the number of CUDA devices, loading the driver.
func cudaDeviceCount() (int, error) {
	noDevices, err := loadCUDA()
	if err != nil {
		return 0, err
	}
	if noDevices {
		return 0, nil
	}
	var count C.int
	if res := C.vs_device_count(&count); res != cudaSuccess {
		return 0, cudaError(-1, "cuDeviceGetCount", res)
	}
	return int(count), nil
}

// cudaDevice is one device's handle and retained primary context.
type cudaDevice struct {
	index int
	dev   C.vs_CUdevice
	ctx   C.vs_CUcontext
}

// cudaOpen returns the device at index, which the caller has checked exists,
// with its primary context retained.
func cudaOpen(index int) (cudaDevice, error) {
	d := cudaDevice{index: index}
	if res := C.vs_device_get(&d.dev, C.int(index)); res != cudaSuccess {
		return cudaDevice{}, cudaError(index, "cuDeviceGet", res)
	}
	if res := C.vs_primary_ctx_retain(&d.ctx, d.dev); res != cudaSuccess {
		return cudaDevice{}, cudaError(index, "cuDevicePrimaryCtxRetain", res)
	}
	return d, nil
}

// cudaDeviceUUID returns the UUID of the device at index, as
// cuda.Properties.UUID gives it, without retaining its primary context; ""
// if the driver cannot say.
func cudaDeviceUUID(index int) (string, error) {
	var dev C.vs_CUdevice
	if res := C.vs_device_get(&dev, C.int(index)); res != cudaSuccess {
		return "", cudaError(index, "cuDeviceGet", res)
	}
	var uuid C.vs_CUuuid
	if res := C.vs_device_uuid(&uuid, dev); res != cudaSuccess {
		return "", nil
	}
	return formatGPUUUID(C.GoBytes(unsafe.Pointer(&uuid.bytes[0]), 16)), nil
}

// release releases the primary context.
func (d cudaDevice) release() error {
	if res := C.vs_primary_ctx_release(d.dev); res != cudaSuccess {
		return cudaError(d.index, "cuDevicePrimaryCtxRelease", res)
	}
	return nil
}

// properties reads what Properties reports.
func (d cudaDevice) properties() (cuda.Properties, error) {
	var p cuda.Properties
	var name [deviceNameLen]C.char
	if res := C.vs_device_name(&name[0], deviceNameLen, d.dev); res != cudaSuccess {
		return cuda.Properties{}, cudaError(d.index, "cuDeviceGetName", res)
	}
	p.Name = C.GoString(&name[0])
	var uuid C.vs_CUuuid
	if res := C.vs_device_uuid(&uuid, d.dev); res == cudaSuccess {
		p.UUID = formatGPUUUID(C.GoBytes(unsafe.Pointer(&uuid.bytes[0]), 16))
	}
	var total C.size_t
	if res := C.vs_device_total_mem(&total, d.dev); res != cudaSuccess {
		return cuda.Properties{}, cudaError(d.index, "cuDeviceTotalMem", res)
	}
	p.TotalMemory = int64(total)
	attrs := []struct {
		attr int
		name string
		set  func(int)
	}{
		{cuAttrComputeMajor, "compute capability major", func(v int) { p.ComputeMajor = v }},
		{cuAttrComputeMinor, "compute capability minor", func(v int) { p.ComputeMinor = v }},
		{cuAttrIntegrated, "integrated", func(v int) { p.Integrated = v != 0 }},
		{cuAttrManagedMemory, "managed memory", func(v int) { p.ManagedMemory = v != 0 }},
		{cuAttrPageableMemoryAccess, "pageable memory access", func(v int) { p.PageableMemoryAccess = v != 0 }},
	}
	for _, a := range attrs {
		var v C.int
		if res := C.vs_device_attribute(&v, C.int(a.attr), d.dev); res != cudaSuccess {
			return cuda.Properties{}, cudaError(d.index, "cuDeviceGetAttribute "+a.name, res)
		}
		a.set(int(v))
	}
	return p, nil
}

// devicePtr is a device address. It never leaves this package and never
// appears in an error or a log.
type devicePtr C.vs_CUdeviceptr

// alloc reserves size bytes of device memory with cuMemAlloc. This is the
// only way the backend obtains memory: never managed, mapped or pinned host
// memory.
func (d cudaDevice) alloc(size int64) (devicePtr, C.vs_CUresult) {
	var ptr C.vs_CUdeviceptr
	res := C.vs_mem_alloc(d.ctx, &ptr, C.size_t(size))
	return devicePtr(ptr), res
}

// free releases memory from alloc.
func (d cudaDevice) free(ptr devicePtr) C.vs_CUresult {
	return C.vs_mem_free(d.ctx, C.vs_CUdeviceptr(ptr))
}

// copyToDevice copies src to ptr+offset; src must not be empty.
func (d cudaDevice) copyToDevice(ptr devicePtr, offset int64, src []byte) C.vs_CUresult {
	return C.vs_copy_to_device(d.ctx, C.vs_CUdeviceptr(ptr), C.size_t(offset), unsafe.Pointer(&src[0]), C.size_t(len(src)))
}

// copyFromDevice copies len(dst) bytes from ptr+offset; dst must not be empty.
func (d cudaDevice) copyFromDevice(dst []byte, ptr devicePtr, offset int64) C.vs_CUresult {
	return C.vs_copy_from_device(d.ctx, unsafe.Pointer(&dst[0]), C.vs_CUdeviceptr(ptr), C.size_t(offset), C.size_t(len(dst)))
}

// cudaKernel is the SHA-256 kernel loaded into a device's primary context.
type cudaKernel struct {
	module   C.vs_CUmodule
	function C.vs_CUfunction
}

// jitLogs are what the driver's JIT said while loading a module.
type jitLogs struct {
	info, error string
}

// loadKernel loads image, PTX or a cubin, and finds entry in it. The JIT's
// logs come back either way; a failure's error carries its error log.
func (d cudaDevice) loadKernel(image []byte, entry string) (cudaKernel, jitLogs, error) {
	// PTX must end in a NUL; a cubin carries its own length, and one more
	// byte does not matter to it.
	img := C.CBytes(append(image[:len(image):len(image)], 0))
	defer C.free(img)
	name := C.CString(entry)
	defer C.free(unsafe.Pointer(name))
	info, errLog := (*C.char)(C.malloc(C.vs_log_bytes)), (*C.char)(C.malloc(C.vs_log_bytes))
	defer C.free(unsafe.Pointer(info))
	defer C.free(unsafe.Pointer(errLog))
	var k cudaKernel
	var stage C.int
	res := C.vs_module_load(d.ctx, img, name, &k.module, &k.function, &stage, info, errLog)
	logs := jitLogs{info: strings.TrimSpace(C.GoString(info)), error: strings.TrimSpace(C.GoString(errLog))}
	if res != cudaSuccess {
		op := "cuModuleLoadDataEx"
		if stage == 1 {
			op = "cuModuleGetFunction " + entry
		}
		err := cudaError(d.index, op, res)
		if logs.error != "" {
			err = fmt.Errorf("%w: JIT error log: %s", err, logs.error)
		}
		return cudaKernel{}, logs, err
	}
	return k, logs, nil
}

// CUfunction_attribute values the backend reads.
const (
	cuFuncMaxThreadsPerBlock = 0
	cuFuncLocalSizeBytes     = 3
	cuFuncNumRegs            = 4
)

// kernelAttribute reads a CUfunction_attribute of k.
func (d cudaDevice) kernelAttribute(k cudaKernel, attr int) (int, error) {
	var v C.int
	if res := C.vs_func_attribute(d.ctx, k.function, C.int(attr), &v); res != cudaSuccess {
		return 0, cudaError(d.index, "cuFuncGetAttribute", res)
	}
	return int(v), nil
}

// driverVersion returns the CUDA version the driver supports, as
// cuDriverGetVersion does: 1000*major + 10*minor.
func driverVersion() (int, error) {
	var v C.int
	if res := C.vs_driver_version(&v); res != cudaSuccess {
		return 0, cudaError(-1, "cuDriverGetVersion", res)
	}
	return int(v), nil
}

// unloadKernel unloads a kernel from loadKernel.
func (d cudaDevice) unloadKernel(k cudaKernel) error {
	if res := C.vs_module_unload(d.ctx, k.module); res != cudaSuccess {
		return cudaError(d.index, "cuModuleUnload", res)
	}
	return nil
}

// hashStages names the calls of vs_hash_spans by its stage numbers.
var hashStages = [...]string{"cuMemcpyHtoDAsync spans", "cuLaunchKernel", "cuStreamSynchronize after the kernel",
	"cuMemcpyDtoHAsync digests", "cuStreamSynchronize after the digests"}

// stream is a CUDA stream of the device's primary context.
type stream C.vs_CUstream

// newStream creates a non-blocking stream.
func (d cudaDevice) newStream() (stream, error) {
	var s C.vs_CUstream
	if res := C.vs_stream_create(d.ctx, &s); res != cudaSuccess {
		return nil, cudaError(d.index, "cuStreamCreate", res)
	}
	return stream(s), nil
}

// destroyStream destroys a stream from newStream.
func (d cudaDevice) destroyStream(s stream) error {
	if res := C.vs_stream_destroy(d.ctx, C.vs_CUstream(s)); res != cudaSuccess {
		return cudaError(d.index, "cuStreamDestroy", res)
	}
	return nil
}

// deviceSpan is what the kernel hashes of one span: length bytes at a
// device address, in chunks of chunkSize bytes.
type deviceSpan struct {
	ptr                       devicePtr
	offset, length, chunkSize int64
}

// runHashKernel launches k once on s over spans, none empty and at most
// launchSpans of them, as blocks blocks of threads threads, with buf (of
// launchBufferBytes) holding the span table and the digests, and copies the
// digests of all their chunks (chunks in all, at most launchChunks) into
// out, 32 bytes each, in span order.
func (d cudaDevice) runHashKernel(k cudaKernel, s stream, buf devicePtr, spans []deviceSpan, chunks int64, blocks, threads uint32, out []byte) error {
	table := make([]C.vs_span, len(spans))
	var first int64
	for i, s := range spans {
		table[i] = C.vs_span{
			data: C.ulonglong(s.ptr) + C.ulonglong(s.offset), length: C.ulonglong(s.length),
			chunk_size: C.ulonglong(s.chunkSize), first: C.ulonglong(first),
		}
		first += (s.length + s.chunkSize - 1) / s.chunkSize
	}
	var stage C.int
	res := C.vs_hash_spans(d.ctx, k.function, C.vs_CUstream(s), C.vs_CUdeviceptr(buf), launchSpans*C.size_t(unsafe.Sizeof(C.vs_span{})),
		&table[0], C.ulonglong(len(table)), C.ulonglong(chunks), C.uint(blocks), C.uint(threads), unsafe.Pointer(&out[0]), &stage)
	if res != cudaSuccess {
		return cudaError(d.index, hashStages[stage], res)
	}
	return nil
}

// memInfo returns the device's free and total memory.
func (d cudaDevice) memInfo() (free, total int64, res C.vs_CUresult) {
	var f, t C.size_t
	res = C.vs_mem_info(d.ctx, &f, &t)
	return int64(f), int64(t), res
}

// hasVMM reports whether the driver has the virtual memory management
// calls shareable allocations need; loadCUDA must have succeeded.
func hasVMM() bool { return C.vs_has_vmm() != 0 }

// checkVMM fails with ErrNoVMM unless the driver has the virtual memory
// management calls and device index supports them with POSIX descriptors:
// a driver may have the symbols on a device or setup (some vGPUs, WSL)
// that cannot use them, where cuMemCreate would fail at the first seal.
func checkVMM(index int) error {
	if !hasVMM() {
		return fmt.Errorf("cuda device %d: %w", index, ErrNoVMM)
	}
	var dev C.vs_CUdevice
	if res := C.vs_device_get(&dev, C.int(index)); res != cudaSuccess {
		return cudaError(index, "cuDeviceGet", res)
	}
	for _, a := range []struct {
		attr int
		what string
	}{{cuAttrVMMSupported, "virtual memory management"}, {cuAttrPOSIXFDSupported, "POSIX descriptor handles"}} {
		var v C.int
		if res := C.vs_device_attribute(&v, C.int(a.attr), dev); res != cudaSuccess {
			return cudaError(index, "cuDeviceGetAttribute "+a.what, res)
		}
		if v == 0 {
			return fmt.Errorf("cuda device %d does not support %s: %w", index, a.what, ErrNoVMM)
		}
	}
	return nil
}

// vmmMem is a virtual memory allocation's CUDA handle and mapped size.
type vmmMem struct {
	handle C.vs_CUmemHandle
	size   int64
}

// vmmMapStages names the calls of vs_vmm_map by its stage numbers, and
// vmmUnmapStages those of vs_vmm_unmap.
var (
	vmmMapStages   = [...]string{"cuCtxSetCurrent", "cuMemImportFromShareableHandle", "cuMemAddressReserve", "cuMemMap", "cuMemSetAccess"}
	vmmUnmapStages = [...]string{"cuCtxSetCurrent", "cuMemUnmap", "cuMemAddressFree", "cuMemRelease"}
)

// vmmGranularity returns the minimum granularity of a shareable allocation.
func (d cudaDevice) vmmGranularity() (int64, error) {
	var g C.size_t
	if res := C.vs_vmm_granularity(d.ctx, d.dev, &g); res != cudaSuccess {
		return 0, cudaError(d.index, "cuMemGetAllocationGranularity", res)
	}
	return int64(g), nil
}

// vmmAlloc makes a shareable allocation of size bytes, a multiple of the
// granularity, mapped read-write for the device. op names the call that
// failed.
func (d cudaDevice) vmmAlloc(size int64) (ptr devicePtr, mem vmmMem, res C.vs_CUresult, op string) {
	var p C.vs_CUdeviceptr
	var stage C.int
	mem.size = size
	res = C.vs_vmm_alloc(d.ctx, d.dev, C.size_t(size), &mem.handle, &p, &stage)
	op = "cuMemCreate"
	if stage >= 0 {
		op = vmmMapStages[stage]
	}
	return devicePtr(p), mem, res, op
}

// vmmImport imports a descriptor from cuMemExportToShareableHandle and maps
// size bytes of it read-only for the device. fd stays the caller's.
func (d cudaDevice) vmmImport(fd int, size int64) (devicePtr, vmmMem, error) {
	var p C.vs_CUdeviceptr
	var stage C.int
	mem := vmmMem{size: size}
	if res := C.vs_vmm_map(d.ctx, d.dev, C.int(fd), C.size_t(size), 1, &mem.handle, &p, &stage); res != cudaSuccess {
		return 0, vmmMem{}, cudaError(d.index, vmmMapStages[stage], res)
	}
	return devicePtr(p), mem, nil
}

// vmmUnmap unmaps and releases a virtual memory allocation from vmmAlloc or
// vmmImport.
func (d cudaDevice) vmmUnmap(ptr devicePtr, mem vmmMem) error {
	var stage C.int
	if res := C.vs_vmm_unmap(d.ctx, C.vs_CUdeviceptr(ptr), C.size_t(mem.size), mem.handle, &stage); res != cudaSuccess {
		return cudaError(d.index, vmmUnmapStages[stage], res)
	}
	return nil
}

// vmmExport returns a new descriptor of mem's memory.
func (d cudaDevice) vmmExport(mem vmmMem) (*os.File, error) {
	var fd C.int
	if res := C.vs_vmm_export(d.ctx, mem.handle, &fd); res != cudaSuccess {
		return nil, cudaError(d.index, "cuMemExportToShareableHandle", res)
	}
	return os.NewFile(uintptr(fd), "cuda-vmm-fd"), nil
}
