/*
 * A stand-in for libcuda.so.1, for testing the driver backend's dlopen path
 * on machines without a GPU. It is a test double, not a GPU: "device memory"
 * is host memory from malloc. It checks what a real driver would reject:
 * every memory call needs a retained primary context made current on the
 * calling thread, copies must stay inside one allocation, frees must name a
 * live allocation, and releasing the primary context with allocations still
 * outstanding fails with FAKE_ERROR_ALLOCATIONS_OUTSTANDING_AT_RELEASE.
 *
 * Modules: cuModuleLoadDataEx takes PTX text and keeps a copy, or a cubin
 * for the fake devices' compute capability (9.0), and writes its info and
 * error logs; the only function it can run is vramseal's SHA-256 kernel,
 * vs_sha256_spans, and only from PTX that declares that entry or a cubin. cuLaunchKernel runs the host build
 * of the same kernel source (../kernel/sha256.c), thread by thread over the
 * grid it is given, after checking the grid, the parameters and that the
 * kernel's reads (its span table and every span) and writes stay inside
 * live allocations. Setting
 * VRAMSEAL_FAKE_CUDA_LAUNCH_ERROR to a CUresult makes every launch fail
 * with it.
 *
 * Streams: the kernel launches only on a stream from cuStreamCreate with
 * CU_STREAM_NON_BLOCKING, never on the legacy default stream, and the
 * launch's work counts as pending until cuStreamSynchronize; async copies
 * on a stream with a pending launch fail, as reading digests that may not
 * be written yet would be a bug. Setting VRAMSEAL_FAKE_CUDA_SYNC_ERROR to a
 * CUresult makes every cuStreamSynchronize after a launch fail with it, as a
 * fault inside a kernel surfaces on a GPU.
 *
 * Virtual memory management (VMM), the calls that share device memory with
 * another process: cuMemGetAllocationGranularity answers 2 MiB, an H100's
 * granularity; cuMemCreate makes a memfd of exactly the size asked for (a
 * multiple of the granularity), sealed against growing and shrinking, and
 * only an allocation created with CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR
 * may be exported. cuMemAddressReserve and cuMemAddressFree reserve and
 * free a PROT_NONE range of host address space; cuMemMap maps the memfd
 * MAP_SHARED into a reserved range and cuMemUnmap turns the range back to
 * PROT_NONE; cuMemSetAccess mprotects it (READ is PROT_READ, READWRITE is
 * PROT_READ|PROT_WRITE) and remembers the flags, so that a copy into or a
 * kernel write to a mapping without write access fails with
 * CUDA_ERROR_ILLEGAL_ADDRESS, and a read from one without read access too,
 * instead of faulting the process. A mapped range is a live allocation of
 * the context current at cuMemMap, exactly like cuMemAlloc memory: copies
 * and kernel spans may use it, cuMemGetInfo counts it, and releasing the
 * primary context while it is mapped fails as above. cuMemRelease of a
 * handle still mapped takes effect at its last cuMemUnmap, as on a GPU.
 * cuMemExportToShareableHandle writes a new file descriptor on each call;
 * cuMemImportFromShareableHandle takes one (osHandle is the descriptor
 * cast to a pointer), accepts only a memfd whose size is a multiple of the
 * granularity, and dups it, so the caller may close its own at once. An
 * importer may be another process loading this same library: nothing but
 * the descriptor is shared with the exporter. The fake refuses
 * cuMemFree_v2 of a mapped range, as a real driver does.
 *
 * Each device has 64 MiB of memory. The devices say they support virtual memory
 * management with POSIX descriptors (attributes 102 and 103) unless built
 * with -DFAKE_NO_VMM or run with VRAMSEAL_FAKE_CUDA_NO_VMM_SUPPORT set, as a
 * driver that has the calls on a device that cannot use them does.
 *
 * Build: cc -shared -fPIC -O2 -o libcuda.so.1 driver_fake_libcuda.c ../kernel/sha256.c -lpthread
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef int CUresult;
typedef int CUdevice;
typedef struct fake_ctx *CUcontext;
typedef unsigned long long CUdeviceptr;
typedef struct { unsigned char bytes[16]; } CUuuid;
typedef struct fake_module *CUmodule;
typedef struct fake_module *CUfunction;
typedef struct fake_stream *CUstream;

/* The kernel's span descriptor and its host build, from ../kernel/sha256.c. */
struct vs_span {
	unsigned long long data, length, chunk_size, first;
};
void vs_sha256_spans_host(unsigned int blocks, unsigned int threads, const struct vs_span *spans,
                          unsigned long long span_count, unsigned long long chunks, unsigned char *digests);

enum {
	FAKE_SUCCESS = 0,
	FAKE_INVALID_VALUE = 1,
	FAKE_OUT_OF_MEMORY = 2,
	FAKE_NOT_INITIALIZED = 3,
	FAKE_INVALID_DEVICE = 101,
	FAKE_INVALID_CONTEXT = 201,
	FAKE_NO_BINARY_FOR_GPU = 209,
	FAKE_INVALID_PTX = 218,
	FAKE_INVALID_HANDLE = 400,
	FAKE_NOT_READY = 600,
	FAKE_NOT_FOUND = 500,
	FAKE_ILLEGAL_ADDRESS = 700,
	FAKE_LAUNCH_FAILED = 719,
	FAKE_NOT_SUPPORTED = 801,
	FAKE_LEAKED = 999,
};

#define FAKE_DEVICES 2
#define FAKE_TOTAL_MEMORY (64ull << 20) /* each device's memory */

/* A VMM allocation from cuMemCreate or cuMemImportFromShareableHandle:
 * its memfd, its size, whether it may be exported, how many mappings it
 * has, and whether cuMemRelease has been called (it is freed when both say
 * it is unused). */
struct fake_vmm {
	int fd;
	size_t size;
	int exportable;
	int maps;
	int released;
	struct fake_vmm *next;
};

/* A live allocation: cuMemAlloc memory (vmm NULL, access READWRITE) or a
 * VMM mapping (vmm its allocation, access the flags cuMemSetAccess gave,
 * PROT_NONE until then). */
struct fake_alloc {
	CUdeviceptr ptr;
	size_t size;
	struct fake_vmm *vmm;
	int access;
	struct fake_alloc *next;
};

/* A loaded module; a function is the module whose PTX declares the kernel,
 * once cuModuleGetFunction has found it there. */
struct fake_module {
	char *ptx; /* "cubin" for a cubin */
	int cubin;
	int has_kernel;
	struct fake_module *next;
};

/* A stream made by cuStreamCreate; pending says a launch on it has not
 * been synchronized yet. */
struct fake_stream {
	int pending;
	struct fake_stream *next;
};

struct fake_ctx {
	CUdevice device;
	int retained;
	size_t used;
	struct fake_alloc *allocs;
	struct fake_module *modules;
	struct fake_stream *streams;
};

#define FAKE_KERNEL "vs_sha256_spans"
#define FAKE_CC_MAJOR 9
#define FAKE_CC_MINOR 0
#define FAKE_MAX_BLOCK_THREADS 1024u

/* CUmemAccess_flags. */
#define FAKE_ACCESS_NONE 0
#define FAKE_ACCESS_READ 1
#define FAKE_ACCESS_READWRITE 3

/* A VA range from cuMemAddressReserve. */
struct fake_reservation {
	CUdeviceptr ptr;
	size_t size;
	struct fake_reservation *next;
};

static pthread_mutex_t fake_mu = PTHREAD_MUTEX_INITIALIZER;
static int fake_initialised;
static struct fake_ctx fake_ctxs[FAKE_DEVICES];
static __thread CUcontext fake_current;
static struct fake_vmm *fake_vmms;
static struct fake_reservation *fake_reservations;

static void unmap_alloc(struct fake_alloc *a);

CUresult cuInit(unsigned int flags) {
	if (flags != 0) {
		return FAKE_INVALID_VALUE;
	}
	pthread_mutex_lock(&fake_mu);
	fake_initialised = 1;
	for (int i = 0; i < FAKE_DEVICES; i++) {
		fake_ctxs[i].device = i;
	}
	pthread_mutex_unlock(&fake_mu);
	return FAKE_SUCCESS;
}

CUresult cuGetErrorName(CUresult r, const char **name) {
	switch (r) {
	case FAKE_SUCCESS: *name = "CUDA_SUCCESS"; return FAKE_SUCCESS;
	case FAKE_INVALID_VALUE: *name = "CUDA_ERROR_INVALID_VALUE"; return FAKE_SUCCESS;
	case FAKE_OUT_OF_MEMORY: *name = "CUDA_ERROR_OUT_OF_MEMORY"; return FAKE_SUCCESS;
	case FAKE_NOT_INITIALIZED: *name = "CUDA_ERROR_NOT_INITIALIZED"; return FAKE_SUCCESS;
	case FAKE_INVALID_DEVICE: *name = "CUDA_ERROR_INVALID_DEVICE"; return FAKE_SUCCESS;
	case FAKE_INVALID_CONTEXT: *name = "CUDA_ERROR_INVALID_CONTEXT"; return FAKE_SUCCESS;
	case FAKE_NO_BINARY_FOR_GPU: *name = "CUDA_ERROR_NO_BINARY_FOR_GPU"; return FAKE_SUCCESS;
	case FAKE_INVALID_PTX: *name = "CUDA_ERROR_INVALID_PTX"; return FAKE_SUCCESS;
	case FAKE_INVALID_HANDLE: *name = "CUDA_ERROR_INVALID_HANDLE"; return FAKE_SUCCESS;
	case FAKE_NOT_READY: *name = "CUDA_ERROR_NOT_READY"; return FAKE_SUCCESS;
	case FAKE_NOT_FOUND: *name = "CUDA_ERROR_NOT_FOUND"; return FAKE_SUCCESS;
	case FAKE_ILLEGAL_ADDRESS: *name = "CUDA_ERROR_ILLEGAL_ADDRESS"; return FAKE_SUCCESS;
	case FAKE_LAUNCH_FAILED: *name = "CUDA_ERROR_LAUNCH_FAILED"; return FAKE_SUCCESS;
	case FAKE_NOT_SUPPORTED: *name = "CUDA_ERROR_NOT_SUPPORTED"; return FAKE_SUCCESS;
	case FAKE_LEAKED: *name = "FAKE_ERROR_ALLOCATIONS_OUTSTANDING_AT_RELEASE"; return FAKE_SUCCESS;
	}
	*name = NULL;
	return FAKE_INVALID_VALUE;
}

CUresult cuDeviceGetCount(int *count) {
	if (!fake_initialised) return FAKE_NOT_INITIALIZED;
	*count = FAKE_DEVICES;
	return FAKE_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *dev, int ordinal) {
	if (!fake_initialised) return FAKE_NOT_INITIALIZED;
	if (ordinal < 0 || ordinal >= FAKE_DEVICES) return FAKE_INVALID_DEVICE;
	*dev = ordinal;
	return FAKE_SUCCESS;
}

CUresult cuDeviceGetName(char *name, int len, CUdevice dev) {
	if (dev < 0 || dev >= FAKE_DEVICES) return FAKE_INVALID_DEVICE;
	if (len < 1) return FAKE_INVALID_VALUE;
	strncpy(name, "vramseal fake CUDA device", (size_t)len - 1);
	name[len - 1] = '\0';
	return FAKE_SUCCESS;
}

/* cuDeviceGetUuid is a MIG instance's parent's UUID, cuDeviceGetUuid_v2 the
 * instance's own; the fake's devices stand for MIG instances, so the two
 * differ (in the first byte: 0xa0 against 0xb0). */
static CUresult fake_uuid(CUuuid *uuid, CUdevice dev, unsigned char first) {
	if (dev < 0 || dev >= FAKE_DEVICES) return FAKE_INVALID_DEVICE;
	for (int i = 0; i < 16; i++) {
		uuid->bytes[i] = (unsigned char)(first + i + dev);
	}
	return FAKE_SUCCESS;
}

CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev) { return fake_uuid(uuid, dev, 0xa0); }
CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev) { return fake_uuid(uuid, dev, 0xb0); }

CUresult cuDriverGetVersion(int *version) {
	if (version == NULL) return FAKE_INVALID_VALUE;
	*version = 12040;
	return FAKE_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev) {
	if (dev < 0 || dev >= FAKE_DEVICES) return FAKE_INVALID_DEVICE;
	*bytes = FAKE_TOTAL_MEMORY;
	return FAKE_SUCCESS;
}

CUresult cuDeviceGetAttribute(int *value, int attr, CUdevice dev) {
	if (dev < 0 || dev >= FAKE_DEVICES) return FAKE_INVALID_DEVICE;
	switch (attr) {
	case 18: *value = 0; return FAKE_SUCCESS; /* integrated */
	case 75: *value = FAKE_CC_MAJOR; return FAKE_SUCCESS; /* compute capability major */
	case 76: *value = FAKE_CC_MINOR; return FAKE_SUCCESS; /* compute capability minor */
	case 83: *value = 1; return FAKE_SUCCESS; /* managed memory */
	case 88: *value = 0; return FAKE_SUCCESS; /* pageable memory access */
	case 102: /* virtual memory management */
	case 103: /* POSIX file descriptor handles */
#ifdef FAKE_NO_VMM
		*value = 0;
#else
		*value = getenv("VRAMSEAL_FAKE_CUDA_NO_VMM_SUPPORT") == NULL;
#endif
		return FAKE_SUCCESS;
	}
	return FAKE_INVALID_VALUE;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *ctx, CUdevice dev) {
	if (dev < 0 || dev >= FAKE_DEVICES) return FAKE_INVALID_DEVICE;
	pthread_mutex_lock(&fake_mu);
	fake_ctxs[dev].retained++;
	pthread_mutex_unlock(&fake_mu);
	*ctx = &fake_ctxs[dev];
	return FAKE_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
	if (dev < 0 || dev >= FAKE_DEVICES) return FAKE_INVALID_DEVICE;
	CUresult r = FAKE_SUCCESS;
	pthread_mutex_lock(&fake_mu);
	if (fake_ctxs[dev].retained == 0) {
		r = FAKE_INVALID_CONTEXT;
	} else if (--fake_ctxs[dev].retained == 0 &&
	           (fake_ctxs[dev].allocs != NULL || fake_ctxs[dev].modules != NULL ||
	            fake_ctxs[dev].streams != NULL)) {
		/* A real driver frees what the context still holds. The fake frees
		 * it too, but reports it: the backend must free and unload
		 * everything first. */
		r = FAKE_LEAKED;
		while (fake_ctxs[dev].allocs != NULL) {
			struct fake_alloc *a = fake_ctxs[dev].allocs;
			fake_ctxs[dev].allocs = a->next;
			if (a->vmm != NULL) {
				unmap_alloc(a);
			} else {
				free((void *)(uintptr_t)a->ptr);
			}
			free(a);
		}
		fake_ctxs[dev].used = 0;
		while (fake_ctxs[dev].modules != NULL) {
			struct fake_module *m = fake_ctxs[dev].modules;
			fake_ctxs[dev].modules = m->next;
			free(m->ptx);
			free(m);
		}
		while (fake_ctxs[dev].streams != NULL) {
			struct fake_stream *st = fake_ctxs[dev].streams;
			fake_ctxs[dev].streams = st->next;
			free(st);
		}
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

CUresult cuCtxSetCurrent(CUcontext ctx) {
	fake_current = ctx;
	return FAKE_SUCCESS;
}

/* current returns the calling thread's context if it is live; fake_mu held. */
static struct fake_ctx *current(void) {
	if (fake_current == NULL || fake_current->retained == 0) return NULL;
	return fake_current;
}

CUresult cuMemAlloc_v2(CUdeviceptr *ptr, size_t size) {
	CUresult r = FAKE_SUCCESS;
	pthread_mutex_lock(&fake_mu);
	struct fake_ctx *c = current();
	if (c == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else if (size == 0) {
		r = FAKE_INVALID_VALUE;
	} else if (size > FAKE_TOTAL_MEMORY - c->used) {
		r = FAKE_OUT_OF_MEMORY;
	} else {
		struct fake_alloc *a = malloc(sizeof *a);
		void *p = malloc(size);
		if (a == NULL || p == NULL) {
			free(a);
			free(p);
			r = FAKE_OUT_OF_MEMORY;
		} else {
			a->ptr = (CUdeviceptr)(uintptr_t)p;
			a->size = size;
			a->vmm = NULL;
			a->access = FAKE_ACCESS_READWRITE;
			a->next = c->allocs;
			c->allocs = a;
			c->used += size;
			*ptr = a->ptr;
		}
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

CUresult cuMemFree_v2(CUdeviceptr ptr) {
	CUresult r = FAKE_INVALID_VALUE;
	pthread_mutex_lock(&fake_mu);
	struct fake_ctx *c = current();
	if (c == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else {
		for (struct fake_alloc **pa = &c->allocs; *pa != NULL; pa = &(*pa)->next) {
			if ((*pa)->ptr == ptr && (*pa)->vmm == NULL) {
				struct fake_alloc *a = *pa;
				*pa = a->next;
				c->used -= a->size;
				free((void *)(uintptr_t)a->ptr);
				free(a);
				r = FAKE_SUCCESS;
				break;
			}
		}
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

/* inside reports whether [ptr, ptr+n) lies in one live allocation of the
 * calling thread's context (CUDA_ERROR_INVALID_VALUE if not) that grants
 * the access asked for (CUDA_ERROR_ILLEGAL_ADDRESS if not). */
static CUresult inside(CUdeviceptr ptr, size_t n, int access) {
	CUresult r = FAKE_INVALID_VALUE;
	pthread_mutex_lock(&fake_mu);
	struct fake_ctx *c = current();
	if (c == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else {
		for (struct fake_alloc *a = c->allocs; a != NULL; a = a->next) {
			if (ptr >= a->ptr && n <= a->size && ptr - a->ptr <= a->size - n) {
				r = (a->access & access) == access ? FAKE_SUCCESS : FAKE_ILLEGAL_ADDRESS;
				break;
			}
		}
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n) {
	CUresult r = inside(dst, n, FAKE_ACCESS_READWRITE);
	if (r == FAKE_SUCCESS) memcpy((void *)(uintptr_t)dst, src, n);
	return r;
}

CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) {
	CUresult r = inside(src, n, FAKE_ACCESS_READ);
	if (r == FAKE_SUCCESS) memcpy(dst, (const void *)(uintptr_t)src, n);
	return r;
}

CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes) {
	CUresult r = FAKE_SUCCESS;
	pthread_mutex_lock(&fake_mu);
	struct fake_ctx *c = current();
	if (c == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else {
		*free_bytes = FAKE_TOTAL_MEMORY - c->used;
		*total_bytes = FAKE_TOTAL_MEMORY;
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

CUresult cuStreamCreate(CUstream *stream, unsigned int flags) {
	if (stream == NULL || flags != 1 /* CU_STREAM_NON_BLOCKING */) return FAKE_INVALID_VALUE;
	CUresult r = FAKE_SUCCESS;
	pthread_mutex_lock(&fake_mu);
	struct fake_ctx *c = current();
	struct fake_stream *st = NULL;
	if (c == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else if ((st = calloc(1, sizeof *st)) == NULL) {
		r = FAKE_OUT_OF_MEMORY;
	} else {
		st->next = c->streams;
		c->streams = st;
		*stream = st;
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

/* live_stream reports whether st is a stream of c; fake_mu held. */
static int live_stream(struct fake_ctx *c, struct fake_stream *st) {
	for (struct fake_stream *x = c->streams; x != NULL; x = x->next) {
		if (x == st) return 1;
	}
	return 0;
}

CUresult cuStreamDestroy_v2(CUstream stream) {
	CUresult r = FAKE_INVALID_HANDLE;
	pthread_mutex_lock(&fake_mu);
	struct fake_ctx *c = current();
	if (c == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else {
		for (struct fake_stream **ps = &c->streams; *ps != NULL; ps = &(*ps)->next) {
			if (*ps == stream) {
				*ps = stream->next;
				free(stream);
				r = FAKE_SUCCESS;
				break;
			}
		}
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

CUresult cuStreamSynchronize(CUstream stream) {
	CUresult r = FAKE_SUCCESS;
	int pending = 0;
	pthread_mutex_lock(&fake_mu);
	struct fake_ctx *c = current();
	if (c == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else if (!live_stream(c, stream)) {
		r = FAKE_INVALID_HANDLE;
	} else {
		pending = stream->pending;
		stream->pending = 0;
	}
	pthread_mutex_unlock(&fake_mu);
	const char *inject = getenv("VRAMSEAL_FAKE_CUDA_SYNC_ERROR");
	if (r == FAKE_SUCCESS && pending && inject != NULL && *inject != '\0') return (CUresult)atoi(inject);
	return r;
}

/* cuCtxSynchronize waits for all the calling thread's context's work: every
 * stream's pending launch is done. */
CUresult cuCtxSynchronize(void) {
	CUresult r = FAKE_SUCCESS;
	pthread_mutex_lock(&fake_mu);
	struct fake_ctx *c = current();
	if (c == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else {
		for (struct fake_stream *st = c->streams; st != NULL; st = st->next) st->pending = 0;
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

/* async_ready checks that stream is a stream of the calling thread's
 * context with no launch pending. */
static CUresult async_ready(CUstream stream) {
	CUresult r = FAKE_SUCCESS;
	pthread_mutex_lock(&fake_mu);
	struct fake_ctx *c = current();
	if (c == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else if (!live_stream(c, stream)) {
		r = FAKE_INVALID_HANDLE;
	} else if (stream->pending) {
		r = FAKE_NOT_READY;
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, CUstream stream) {
	CUresult r = async_ready(stream);
	return r != FAKE_SUCCESS ? r : cuMemcpyHtoD_v2(dst, src, n);
}

CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, CUstream stream) {
	CUresult r = async_ready(stream);
	return r != FAKE_SUCCESS ? r : cuMemcpyDtoH_v2(dst, src, n);
}

/* declares reports whether the PTX text declares entry name. */
static int declares(const char *ptx, const char *name) {
	char want[128];
	snprintf(want, sizeof want, ".entry %s(", name);
	return strstr(ptx, want) != NULL;
}

/* cubin_arch returns the SM version (80 for sm_80) of a cubin: an ELF
 * image for EM_CUDA (190) whose e_flags' low byte is the version; 0 if
 * image is not one. */
static int cubin_arch(const unsigned char *image) {
	if (memcmp(image, "\x7f" "ELF", 4) != 0 || image[4] != 2 /* 64-bit */) return 0;
	if (image[18] != 190 || image[19] != 0) return 0;
	return image[48];
}

/* jit_log copies msg into the log buffer of the option pair (buffer,
 * size) if the caller gave one, and sets the size to what was written. */
static void jit_log(unsigned int n, const int *opts, void **vals, int buf_opt, int size_opt, const char *msg) {
	char *buf = NULL;
	int size_at = -1;
	for (unsigned int i = 0; i < n; i++) {
		if (opts[i] == buf_opt) buf = vals[i];
		if (opts[i] == size_opt) size_at = (int)i;
	}
	if (buf == NULL || size_at < 0) return;
	size_t size = (size_t)(uintptr_t)vals[size_at];
	if (size == 0) return;
	snprintf(buf, size, "%s", msg);
	vals[size_at] = (void *)(uintptr_t)strlen(buf);
}

CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int n, int *opts, void **vals) {
	if (module == NULL || image == NULL || (n > 0 && (opts == NULL || vals == NULL))) return FAKE_INVALID_VALUE;
	for (unsigned int i = 0; i < n; i++) {
		/* The log buffers and sizes, and verbose logging: all the backend
		 * asks for. */
		if (opts[i] < 3 || (opts[i] > 6 && opts[i] != 12)) return FAKE_INVALID_VALUE;
	}
	/* A cubin runs on its own major compute capability, minor at least its
	 * own; the fake devices are 9.0. PTX: enough of it to tell it from
	 * anything else, a version, a target and at least one entry. A real
	 * driver compiles it; the fake keeps it. */
	const char *text = image;
	int arch = cubin_arch(image);
	if (arch != 0) {
		if (arch / 10 != FAKE_CC_MAJOR || arch % 10 > FAKE_CC_MINOR) {
			jit_log(n, opts, vals, 5, 6, "fake libcuda: the cubin is not for this device's compute capability");
			return FAKE_NO_BINARY_FOR_GPU;
		}
		text = "cubin";
		jit_log(n, opts, vals, 3, 4, "fake libcuda: cubin loaded as it is");
	} else if (strstr(text, ".version ") == NULL || strstr(text, ".target sm_") == NULL ||
	           strstr(text, ".entry ") == NULL) {
		jit_log(n, opts, vals, 5, 6, "fake libcuda: neither PTX nor a cubin");
		return FAKE_INVALID_PTX;
	} else {
		jit_log(n, opts, vals, 3, 4, "fake libcuda: PTX kept, not compiled");
	}
	CUresult r = FAKE_SUCCESS;
	pthread_mutex_lock(&fake_mu);
	struct fake_ctx *c = current();
	struct fake_module *m = NULL;
	if (c == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else if ((m = calloc(1, sizeof *m)) == NULL || (m->ptx = strdup(text)) == NULL) {
		free(m);
		r = FAKE_OUT_OF_MEMORY;
	} else {
		m->cubin = arch != 0;
		m->next = c->modules;
		c->modules = m;
		*module = m;
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

/* live reports whether m is loaded in the calling thread's context;
 * fake_mu held. */
static int live(struct fake_ctx *c, struct fake_module *m) {
	for (struct fake_module *x = c->modules; x != NULL; x = x->next) {
		if (x == m) return 1;
	}
	return 0;
}

CUresult cuModuleUnload(CUmodule module) {
	CUresult r = FAKE_INVALID_HANDLE;
	pthread_mutex_lock(&fake_mu);
	struct fake_ctx *c = current();
	if (c == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else {
		for (struct fake_module **pm = &c->modules; *pm != NULL; pm = &(*pm)->next) {
			if (*pm == module) {
				*pm = module->next;
				free(module->ptx);
				free(module);
				r = FAKE_SUCCESS;
				break;
			}
		}
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

CUresult cuModuleGetFunction(CUfunction *fn, CUmodule module, const char *name) {
	if (fn == NULL || name == NULL) return FAKE_INVALID_VALUE;
	CUresult r = FAKE_SUCCESS;
	pthread_mutex_lock(&fake_mu);
	struct fake_ctx *c = current();
	if (c == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else if (!live(c, module)) {
		r = FAKE_INVALID_HANDLE;
	} else if (strcmp(name, FAKE_KERNEL) != 0 || (!module->cubin && !declares(module->ptx, name))) {
		r = FAKE_NOT_FOUND;
	} else {
		module->has_kernel = 1;
		*fn = module;
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

/* cuFuncGetAttribute answers for the fake's one kernel. Its figures are
 * the fake's, not a GPU's: no registers, no local memory. */
CUresult cuFuncGetAttribute(int *value, int attr, CUfunction fn) {
	if (value == NULL) return FAKE_INVALID_VALUE;
	CUresult r = FAKE_SUCCESS;
	pthread_mutex_lock(&fake_mu);
	struct fake_ctx *c = current();
	if (c == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else if (!live(c, fn) || !fn->has_kernel) {
		r = FAKE_INVALID_HANDLE;
	}
	pthread_mutex_unlock(&fake_mu);
	if (r != FAKE_SUCCESS) return r;
	switch (attr) {
	case 0: *value = (int)FAKE_MAX_BLOCK_THREADS; return FAKE_SUCCESS; /* max threads per block */
	case 3: *value = 0; return FAKE_SUCCESS;                           /* local bytes */
	case 4: *value = 0; return FAKE_SUCCESS;                           /* registers */
	}
	return FAKE_INVALID_VALUE;
}

CUresult cuLaunchKernel(CUfunction fn, unsigned int grid_x, unsigned int grid_y, unsigned int grid_z,
                        unsigned int block_x, unsigned int block_y, unsigned int block_z,
                        unsigned int shared_bytes, CUstream stream, void **params, void **extra) {
	const char *inject = getenv("VRAMSEAL_FAKE_CUDA_LAUNCH_ERROR");
	if (inject != NULL && *inject != '\0') return (CUresult)atoi(inject);

	CUresult r = FAKE_SUCCESS;
	pthread_mutex_lock(&fake_mu);
	struct fake_ctx *c = current();
	if (c == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else if (!live(c, fn) || !fn->has_kernel || !live_stream(c, stream)) {
		r = FAKE_INVALID_HANDLE;
	}
	pthread_mutex_unlock(&fake_mu);
	if (r != FAKE_SUCCESS) return r;
	/* The kernel indexes along x only, uses no shared memory, and takes
	 * its four parameters through params. */
	if (grid_x == 0 || grid_y != 1 || grid_z != 1 || block_x == 0 || block_x > FAKE_MAX_BLOCK_THREADS ||
	    block_y != 1 || block_z != 1 || shared_bytes != 0 || params == NULL || extra != NULL) {
		return FAKE_INVALID_VALUE;
	}
	CUdeviceptr table = *(CUdeviceptr *)params[0];
	unsigned long long span_count = *(unsigned long long *)params[1];
	unsigned long long chunks = *(unsigned long long *)params[2];
	CUdeviceptr digests = *(CUdeviceptr *)params[3];
	/* On a GPU, a read or write outside device memory faults the context.
	 * The threads that write are those with a chunk. */
	if (span_count > 0 && inside(table, span_count * sizeof(struct vs_span), FAKE_ACCESS_READ) != FAKE_SUCCESS) {
		return FAKE_ILLEGAL_ADDRESS;
	}
	const struct vs_span *spans = (const struct vs_span *)(uintptr_t)table;
	for (unsigned long long i = 0; i < span_count; i++) {
		if (spans[i].length > 0 && inside(spans[i].data, spans[i].length, FAKE_ACCESS_READ) != FAKE_SUCCESS) {
			return FAKE_ILLEGAL_ADDRESS;
		}
	}
	unsigned long long threads = (unsigned long long)grid_x * block_x;
	unsigned long long writers = chunks < threads ? chunks : threads;
	if (writers > 0 && inside(digests, 32 * writers, FAKE_ACCESS_READWRITE) != FAKE_SUCCESS) {
		return FAKE_ILLEGAL_ADDRESS;
	}
	vs_sha256_spans_host(grid_x, block_x, spans, span_count, chunks, (unsigned char *)(uintptr_t)digests);
	pthread_mutex_lock(&fake_mu);
	stream->pending = 1;
	pthread_mutex_unlock(&fake_mu);
	return FAKE_SUCCESS;
}

/* Virtual memory management, with cuda.h's types and layouts. Built with
 * -DFAKE_NO_VMM, the library lacks cuMemCreate, as drivers before CUDA 10.2
 * do, so that the backend's check for the VMM calls can be tested. */
#ifdef FAKE_NO_VMM
#define cuMemCreate fake_no_cuMemCreate
#endif

typedef unsigned long long CUmemGenericAllocationHandle;

typedef struct {
	int type; /* CUmemLocationType: 1 is CU_MEM_LOCATION_TYPE_DEVICE */
	int id;
} CUmemLocation;

typedef struct {
	int type;                 /* CUmemAllocationType: 1 is CU_MEM_ALLOCATION_TYPE_PINNED */
	int requestedHandleTypes; /* CUmemAllocationHandleType */
	CUmemLocation location;
	void *win32HandleMetaData;
	struct {
		unsigned char compressionType;
		unsigned char gpuDirectRDMACapable;
		unsigned short usage;
		unsigned char reserved[4];
	} allocFlags;
} CUmemAllocationProp;

typedef struct {
	CUmemLocation location;
	int flags; /* CUmemAccess_flags */
} CUmemAccessDesc;

#define FAKE_GRANULARITY (2ull << 20)
#define FAKE_HANDLE_TYPE_NONE 0
#define FAKE_HANDLE_TYPE_POSIX_FD 1
#define FAKE_LOCATION_DEVICE 1

/* check_prop checks an allocation's properties: a pinned allocation on the
 * current context's device, with no handle type or a POSIX descriptor, the
 * only one the fake can export. */
static CUresult check_prop(struct fake_ctx *c, const CUmemAllocationProp *prop) {
	if (c == NULL) return FAKE_INVALID_CONTEXT;
	if (prop == NULL || prop->type != 1 || prop->location.type != FAKE_LOCATION_DEVICE ||
	    prop->win32HandleMetaData != NULL) {
		return FAKE_INVALID_VALUE;
	}
	if (prop->location.id != c->device) return FAKE_INVALID_DEVICE;
	if (prop->requestedHandleTypes != FAKE_HANDLE_TYPE_NONE && prop->requestedHandleTypes != FAKE_HANDLE_TYPE_POSIX_FD) {
		return FAKE_NOT_SUPPORTED;
	}
	return FAKE_SUCCESS;
}

CUresult cuMemGetAllocationGranularity(size_t *granularity, const CUmemAllocationProp *prop, int option) {
	if (granularity == NULL || (option != 0 && option != 1)) return FAKE_INVALID_VALUE;
	pthread_mutex_lock(&fake_mu);
	CUresult r = check_prop(current(), prop);
	pthread_mutex_unlock(&fake_mu);
	if (r == FAKE_SUCCESS) *granularity = FAKE_GRANULARITY;
	return r;
}

/* new_vmm records a VMM allocation over fd; fake_mu held. */
static struct fake_vmm *new_vmm(int fd, size_t size, int exportable) {
	struct fake_vmm *v = calloc(1, sizeof *v);
	if (v == NULL) return NULL;
	v->fd = fd;
	v->size = size;
	v->exportable = exportable;
	v->next = fake_vmms;
	fake_vmms = v;
	return v;
}

/* find_vmm returns the live (not released) allocation named by handle, or
 * NULL; fake_mu held. */
static struct fake_vmm *find_vmm(CUmemGenericAllocationHandle handle) {
	for (struct fake_vmm *v = fake_vmms; v != NULL; v = v->next) {
		if ((CUmemGenericAllocationHandle)(uintptr_t)v == handle && !v->released) return v;
	}
	return NULL;
}

/* free_vmm frees v if it is released and unmapped; fake_mu held. */
static void free_vmm(struct fake_vmm *v) {
	if (!v->released || v->maps > 0) return;
	for (struct fake_vmm **pv = &fake_vmms; *pv != NULL; pv = &(*pv)->next) {
		if (*pv == v) {
			*pv = v->next;
			break;
		}
	}
	close(v->fd);
	free(v);
}

/* unmap_alloc turns a VMM mapping back into reserved PROT_NONE address
 * space and drops its hold on the allocation; the caller unlinks and frees
 * a. fake_mu held. */
static void unmap_alloc(struct fake_alloc *a) {
	mmap((void *)(uintptr_t)a->ptr, a->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
	a->vmm->maps--;
	free_vmm(a->vmm);
}

CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size, const CUmemAllocationProp *prop,
                     unsigned long long flags) {
	if (handle == NULL || flags != 0) return FAKE_INVALID_VALUE;
	pthread_mutex_lock(&fake_mu);
	struct fake_ctx *c = current();
	CUresult r = check_prop(c, prop);
	if (r != FAKE_SUCCESS) {
		/* r says why. */
	} else if (size == 0 || size % FAKE_GRANULARITY != 0) {
		r = FAKE_INVALID_VALUE;
	} else if (size > FAKE_TOTAL_MEMORY - c->used) {
		r = FAKE_OUT_OF_MEMORY;
	} else {
		int fd = memfd_create("vramseal-fake-vmm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		struct fake_vmm *v = NULL;
		if (fd < 0 || ftruncate(fd, (off_t)size) != 0 ||
		    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0 ||
		    (v = new_vmm(fd, size, prop->requestedHandleTypes == FAKE_HANDLE_TYPE_POSIX_FD)) == NULL) {
			if (fd >= 0) close(fd);
			r = FAKE_OUT_OF_MEMORY;
		} else {
			*handle = (CUmemGenericAllocationHandle)(uintptr_t)v;
		}
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
	CUresult r = FAKE_SUCCESS;
	pthread_mutex_lock(&fake_mu);
	struct fake_vmm *v = NULL;
	if (current() == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else if ((v = find_vmm(handle)) == NULL) {
		r = FAKE_INVALID_VALUE;
	} else {
		v->released = 1;
		free_vmm(v);
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment, CUdeviceptr addr,
                             unsigned long long flags) {
	(void)addr; /* a hint, which the fake does not take */
	if (ptr == NULL || flags != 0 || size == 0 || size % FAKE_GRANULARITY != 0 ||
	    (alignment & (alignment - 1)) != 0) {
		return FAKE_INVALID_VALUE;
	}
	size_t align = alignment > FAKE_GRANULARITY ? alignment : FAKE_GRANULARITY;
	CUresult r = FAKE_SUCCESS;
	pthread_mutex_lock(&fake_mu);
	struct fake_reservation *res = NULL;
	if (current() == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else if ((res = calloc(1, sizeof *res)) == NULL) {
		r = FAKE_OUT_OF_MEMORY;
	} else {
		void *p = mmap(NULL, size + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED) {
			free(res);
			r = FAKE_OUT_OF_MEMORY;
		} else {
			uintptr_t start = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
			if (start > (uintptr_t)p) munmap(p, start - (uintptr_t)p);
			uintptr_t end = (uintptr_t)p + size + align;
			if (end > start + size) munmap((void *)(start + size), end - (start + size));
			res->ptr = (CUdeviceptr)start;
			res->size = size;
			res->next = fake_reservations;
			fake_reservations = res;
			*ptr = res->ptr;
		}
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

/* mapped reports whether any context has a VMM mapping overlapping
 * [ptr, ptr+size); fake_mu held. */
static int mapped(CUdeviceptr ptr, size_t size) {
	for (int i = 0; i < FAKE_DEVICES; i++) {
		for (struct fake_alloc *a = fake_ctxs[i].allocs; a != NULL; a = a->next) {
			if (a->vmm != NULL && a->ptr < ptr + size && ptr < a->ptr + a->size) return 1;
		}
	}
	return 0;
}

CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size) {
	CUresult r = FAKE_INVALID_VALUE;
	pthread_mutex_lock(&fake_mu);
	if (current() == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else {
		for (struct fake_reservation **pr = &fake_reservations; *pr != NULL; pr = &(*pr)->next) {
			struct fake_reservation *res = *pr;
			if (res->ptr == ptr && res->size == size) {
				if (!mapped(ptr, size)) {
					*pr = res->next;
					munmap((void *)(uintptr_t)res->ptr, res->size);
					free(res);
					r = FAKE_SUCCESS;
				}
				break;
			}
		}
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

/* reserved reports whether [ptr, ptr+size) lies in one reservation;
 * fake_mu held. */
static int reserved(CUdeviceptr ptr, size_t size) {
	for (struct fake_reservation *res = fake_reservations; res != NULL; res = res->next) {
		if (ptr >= res->ptr && size <= res->size && ptr - res->ptr <= res->size - size) return 1;
	}
	return 0;
}

CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
                  unsigned long long flags) {
	if (flags != 0 || size == 0 || size % FAKE_GRANULARITY != 0 || ptr % FAKE_GRANULARITY != 0 ||
	    offset % FAKE_GRANULARITY != 0) {
		return FAKE_INVALID_VALUE;
	}
	CUresult r = FAKE_SUCCESS;
	pthread_mutex_lock(&fake_mu);
	struct fake_ctx *c = current();
	struct fake_vmm *v = NULL;
	struct fake_alloc *a = NULL;
	if (c == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else if ((v = find_vmm(handle)) == NULL || offset > v->size || size > v->size - offset ||
	           !reserved(ptr, size) || mapped(ptr, size)) {
		r = FAKE_INVALID_VALUE;
	} else if ((a = calloc(1, sizeof *a)) == NULL ||
	           mmap((void *)(uintptr_t)ptr, size, PROT_NONE, MAP_SHARED | MAP_FIXED, v->fd, (off_t)offset) == MAP_FAILED) {
		free(a);
		r = FAKE_OUT_OF_MEMORY;
	} else {
		a->ptr = ptr;
		a->size = size;
		a->vmm = v;
		a->access = FAKE_ACCESS_NONE;
		a->next = c->allocs;
		c->allocs = a;
		c->used += size;
		v->maps++;
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

/* whole reports whether [ptr, ptr+size) is exactly a set of whole VMM
 * mappings of c; fake_mu held. */
static int whole(struct fake_ctx *c, CUdeviceptr ptr, size_t size) {
	size_t covered = 0;
	for (struct fake_alloc *a = c->allocs; a != NULL; a = a->next) {
		if (a->ptr < ptr + size && ptr < a->ptr + a->size) {
			if (a->vmm == NULL || a->ptr < ptr || a->ptr + a->size > ptr + size) return 0;
			covered += a->size;
		}
	}
	return size > 0 && covered == size;
}

CUresult cuMemUnmap(CUdeviceptr ptr, size_t size) {
	CUresult r = FAKE_SUCCESS;
	pthread_mutex_lock(&fake_mu);
	struct fake_ctx *c = current();
	if (c == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else if (!whole(c, ptr, size)) {
		r = FAKE_INVALID_VALUE;
	} else {
		for (struct fake_alloc **pa = &c->allocs; *pa != NULL;) {
			struct fake_alloc *a = *pa;
			if (a->ptr >= ptr && a->ptr < ptr + size) {
				*pa = a->next;
				c->used -= a->size;
				unmap_alloc(a);
				free(a);
			} else {
				pa = &a->next;
			}
		}
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc, size_t count) {
	if (desc == NULL || count == 0) return FAKE_INVALID_VALUE;
	CUresult r = FAKE_SUCCESS;
	pthread_mutex_lock(&fake_mu);
	struct fake_ctx *c = current();
	int access = -1;
	if (c == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else {
		/* One address space: the access given to the current context's
		 * device is the one the fake applies; others are checked only. */
		for (size_t i = 0; i < count && r == FAKE_SUCCESS; i++) {
			int f = desc[i].flags;
			if (desc[i].location.type != FAKE_LOCATION_DEVICE) {
				r = FAKE_INVALID_VALUE;
			} else if (desc[i].location.id < 0 || desc[i].location.id >= FAKE_DEVICES) {
				r = FAKE_INVALID_DEVICE;
			} else if (f != FAKE_ACCESS_NONE && f != FAKE_ACCESS_READ && f != FAKE_ACCESS_READWRITE) {
				r = FAKE_INVALID_VALUE;
			} else if (desc[i].location.id == c->device) {
				access = f;
			}
		}
		if (r == FAKE_SUCCESS && !whole(c, ptr, size)) r = FAKE_INVALID_VALUE;
	}
	if (r == FAKE_SUCCESS && access >= 0) {
		int prot = access == FAKE_ACCESS_READWRITE ? PROT_READ | PROT_WRITE
		           : access == FAKE_ACCESS_READ    ? PROT_READ
		                                           : PROT_NONE;
		for (struct fake_alloc *a = c->allocs; a != NULL; a = a->next) {
			if (a->ptr >= ptr && a->ptr < ptr + size) {
				if (mprotect((void *)(uintptr_t)a->ptr, a->size, prot) != 0) {
					r = FAKE_OUT_OF_MEMORY;
					break;
				}
				a->access = access;
			}
		}
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

CUresult cuMemExportToShareableHandle(void *shareable, CUmemGenericAllocationHandle handle, int type,
                                      unsigned long long flags) {
	if (shareable == NULL || flags != 0) return FAKE_INVALID_VALUE;
	if (type != FAKE_HANDLE_TYPE_POSIX_FD) return FAKE_NOT_SUPPORTED;
	CUresult r = FAKE_SUCCESS;
	pthread_mutex_lock(&fake_mu);
	struct fake_vmm *v = NULL;
	if (current() == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else if ((v = find_vmm(handle)) == NULL || !v->exportable) {
		r = FAKE_INVALID_VALUE;
	} else {
		int fd = fcntl(v->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			r = FAKE_OUT_OF_MEMORY;
		} else {
			*(int *)shareable = fd;
		}
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

CUresult cuMemImportFromShareableHandle(CUmemGenericAllocationHandle *handle, void *os_handle, int type) {
	if (handle == NULL) return FAKE_INVALID_VALUE;
	if (type != FAKE_HANDLE_TYPE_POSIX_FD) return FAKE_NOT_SUPPORTED;
	int fd = (int)(uintptr_t)os_handle;
	CUresult r = FAKE_SUCCESS;
	struct stat st;
	pthread_mutex_lock(&fake_mu);
	if (current() == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else if (fcntl(fd, F_GET_SEALS) < 0 || fstat(fd, &st) != 0 || st.st_size <= 0 ||
	           (unsigned long long)st.st_size % FAKE_GRANULARITY != 0) {
		/* Only a memfd of whole granules is an exported allocation. */
		r = FAKE_INVALID_VALUE;
	} else {
		int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		struct fake_vmm *v = NULL;
		if (own < 0 || (v = new_vmm(own, (size_t)st.st_size, 1)) == NULL) {
			if (own >= 0) close(own);
			r = FAKE_OUT_OF_MEMORY;
		} else {
			*handle = (CUmemGenericAllocationHandle)(uintptr_t)v;
		}
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}
