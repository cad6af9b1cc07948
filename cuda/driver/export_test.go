package driver

import "fmt"

// What the tests outside the package (cuda_test, which may import the
// embedding API above cuda) need of its internals.

// OpenTestDriver opens CUDA device 0 and closes it when the test ends, or
// skips the test when this machine has no driver or no GPU.
var OpenTestDriver = openTestDriver

// CopyFromPointer copies len(dst) bytes from device address ptr into dst
// with cuMemcpyDtoH in d's context, as inference code handed a lease's
// device pointer would read them; dst must not be empty.
func (d *Device) CopyFromPointer(dst []byte, ptr uintptr) error {
	if res := d.dev.copyFromDevice(dst, devicePtr(ptr), 0); res != cudaSuccess {
		return cudaError(d.dev.index, fmt.Sprintf("cuMemcpyDtoH %d bytes through a device pointer", len(dst)), res)
	}
	return nil
}
