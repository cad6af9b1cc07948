/*
 * A stand-in for libcuda.so.1, for testing the driver backend's dlopen path
 * on machines without a GPU. It is a test double, not a GPU: "device memory"
 * is host memory from malloc. It checks what a real driver would reject:
 * every memory call needs a retained primary context made current on the
 * calling thread, copies must stay inside one allocation, frees must name a
 * live allocation, and releasing the primary context with allocations still
 * outstanding fails with FAKE_ERROR_ALLOCATIONS_OUTSTANDING_AT_RELEASE.
 *
 * Build: cc -shared -fPIC -o libcuda.so.1 driver_fake_libcuda.c -lpthread
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef struct fake_ctx *CUcontext;
typedef unsigned long long CUdeviceptr;
typedef struct { unsigned char bytes[16]; } CUuuid;

enum {
	FAKE_SUCCESS = 0,
	FAKE_INVALID_VALUE = 1,
	FAKE_OUT_OF_MEMORY = 2,
	FAKE_NOT_INITIALIZED = 3,
	FAKE_INVALID_DEVICE = 101,
	FAKE_INVALID_CONTEXT = 201,
	FAKE_LEAKED = 999,
};

#define FAKE_DEVICES 2
#define FAKE_TOTAL_MEMORY (64ull << 20)

struct fake_alloc {
	CUdeviceptr ptr;
	size_t size;
	struct fake_alloc *next;
};

struct fake_ctx {
	CUdevice device;
	int retained;
	size_t used;
	struct fake_alloc *allocs;
};

static pthread_mutex_t fake_mu = PTHREAD_MUTEX_INITIALIZER;
static int fake_initialised;
static struct fake_ctx fake_ctxs[FAKE_DEVICES];
static __thread CUcontext fake_current;

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

CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev) {
	if (dev < 0 || dev >= FAKE_DEVICES) return FAKE_INVALID_DEVICE;
	for (int i = 0; i < 16; i++) {
		uuid->bytes[i] = (unsigned char)(0xa0 + i + dev);
	}
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
	case 75: *value = 9; return FAKE_SUCCESS; /* compute capability major */
	case 76: *value = 0; return FAKE_SUCCESS; /* compute capability minor */
	case 83: *value = 1; return FAKE_SUCCESS; /* managed memory */
	case 88: *value = 0; return FAKE_SUCCESS; /* pageable memory access */
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
	} else if (--fake_ctxs[dev].retained == 0 && fake_ctxs[dev].allocs != NULL) {
		/* A real driver frees what the context still holds. The fake frees
		 * it too, but reports it: the backend must free everything first. */
		r = FAKE_LEAKED;
		while (fake_ctxs[dev].allocs != NULL) {
			struct fake_alloc *a = fake_ctxs[dev].allocs;
			fake_ctxs[dev].allocs = a->next;
			free((void *)(uintptr_t)a->ptr);
			free(a);
		}
		fake_ctxs[dev].used = 0;
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
			if ((*pa)->ptr == ptr) {
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
 * calling thread's context. */
static CUresult inside(CUdeviceptr ptr, size_t n) {
	CUresult r = FAKE_INVALID_VALUE;
	pthread_mutex_lock(&fake_mu);
	struct fake_ctx *c = current();
	if (c == NULL) {
		r = FAKE_INVALID_CONTEXT;
	} else {
		for (struct fake_alloc *a = c->allocs; a != NULL; a = a->next) {
			if (ptr >= a->ptr && n <= a->size && ptr - a->ptr <= a->size - n) {
				r = FAKE_SUCCESS;
				break;
			}
		}
	}
	pthread_mutex_unlock(&fake_mu);
	return r;
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n) {
	CUresult r = inside(dst, n);
	if (r == FAKE_SUCCESS) memcpy((void *)(uintptr_t)dst, src, n);
	return r;
}

CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) {
	CUresult r = inside(src, n);
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
