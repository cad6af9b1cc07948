package driver

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// forbiddenMemoryCalls are the CUDA calls that put memory anywhere but
// dedicated VRAM, or let the device see host memory.
var forbiddenMemoryCalls = []string{
	"cuMemAllocManaged",
	"cuMemHostAlloc",
	"cuMemAllocHost",
	"cuMemHostRegister",
	"cuMemHostGetDevicePointer",
	"cudaMallocManaged",
	"cudaHostAlloc",
}

func TestDriverUsesOnlyDeviceMemory(t *testing.T) {
	var sources []string
	for _, pattern := range []string{"*.go", "*.c", "*.h"} {
		matches, err := filepath.Glob(pattern)
		require.NoError(t, err)
		for _, m := range matches {
			if !strings.HasSuffix(m, "_test.go") {
				sources = append(sources, m)
			}
		}
	}
	require.Contains(t, sources, "driver.go", "the scan sees the driver backend")
	require.Contains(t, sources, "lib.go", "the scan sees the C loader")

	resolved := map[string]bool{}
	for _, path := range sources {
		src, err := os.ReadFile(path)
		require.NoError(t, err)
		for _, call := range forbiddenMemoryCalls {
			assert.NotContains(t, string(src), call, "%s mentions %s", path, call)
		}
		for _, m := range driverSymbol.FindAllStringSubmatch(string(src), -1) {
			resolved[m[1]] = true
		}
	}
	require.True(t, resolved["cuMemAlloc_v2"], "the scan finds the entry points the loader resolves")
	for name := range resolved {
		assert.True(t, allowedDriverSymbols[name], "the driver resolves %s, which is not on the list of vetted calls", name)
	}
}

// driverSymbol matches an entry point name the C loader resolves: a string
// literal that closes a symbol table entry or a dlsym-style call.
var driverSymbol = regexp.MustCompile(`"(cu[A-Z][A-Za-z0-9_]*)"\s*[})]`)

// allowedDriverSymbols are the CUDA entry points the backend may resolve:
// cuMemAlloc_v2 is the only allocator, and nothing maps host memory. The
// module and launch calls run the SHA-256 kernel, which is given device
// pointers only (cuFuncGetAttribute reads its registers and local memory
// for the log); the stream calls order its launches, and the async copies
// move its span table in and its digests out between the caller's pageable
// memory and a digest buffer from cuMemAlloc_v2. The virtual memory calls
// make shareable allocations (WithShareable): cuMemCreate of pinned device
// memory on the device itself (CU_MEM_LOCATION_TYPE_DEVICE), mapped into
// the device's address space and exported or imported as a POSIX
// descriptor; none of them maps host memory.
var allowedDriverSymbols = map[string]bool{
	"cuInit":                       true,
	"cuGetErrorName":               true,
	"cuDeviceGetCount":             true,
	"cuDeviceGet":                  true,
	"cuDeviceGetName":              true,
	"cuDeviceGetUuid":              true,
	"cuDeviceGetUuid_v2":           true,
	"cuDriverGetVersion":           true,
	"cuDeviceTotalMem_v2":          true,
	"cuDeviceGetAttribute":         true,
	"cuDevicePrimaryCtxRetain":     true,
	"cuDevicePrimaryCtxRelease_v2": true,
	"cuDevicePrimaryCtxRelease":    true,
	"cuCtxSetCurrent":              true,
	"cuMemAlloc_v2":                true,
	"cuMemFree_v2":                 true,
	"cuMemcpyHtoD_v2":              true,
	"cuMemcpyDtoH_v2":              true,
	"cuMemGetInfo_v2":              true,
	"cuModuleLoadDataEx":           true,
	"cuFuncGetAttribute":           true,
	"cuModuleUnload":               true,
	"cuModuleGetFunction":          true,
	"cuLaunchKernel":               true,
	"cuStreamCreate":               true,
	"cuStreamDestroy_v2":           true,
	"cuStreamSynchronize":          true,
	"cuMemcpyHtoDAsync_v2":         true,
	"cuMemcpyDtoHAsync_v2":         true,

	"cuMemGetAllocationGranularity":  true,
	"cuMemCreate":                    true,
	"cuMemRelease":                   true,
	"cuMemAddressReserve":            true,
	"cuMemAddressFree":               true,
	"cuMemMap":                       true,
	"cuMemUnmap":                     true,
	"cuMemSetAccess":                 true,
	"cuMemExportToShareableHandle":   true,
	"cuMemImportFromShareableHandle": true,
}
