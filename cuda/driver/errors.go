package driver

import (
	"errors"
	"fmt"

	"github.com/vramseal/vramseal/messages"
)

// ErrNoVMM is returned by a shareable Open (WithShareable), and by Import,
// when the driver lacks CUDA's virtual memory management calls (cuMemCreate
// and the calls around it, CUDA 10.2 on) or the device does not support
// them with POSIX file descriptor handles.
var ErrNoVMM = errors.New("shareable allocations need CUDA virtual memory management with POSIX descriptors (cuMemCreate), which this driver or device lacks")

// CUresult codes the driver backend treats specially, from the CUDA driver
// API's cudaError_enum.
const (
	cudaSuccess           = 0
	cudaErrorInvalidValue = 1
	cudaErrorOutOfMemory  = 2
	cudaErrorStubLibrary  = 34
	cudaErrorNoDevice     = 100
)

// cudaResultError turns a failed CUDA driver call into an error of the
// matching kind: out of memory is messages.ErrInsufficientVRAM, an invalid
// value is messages.ErrInvalidInput, anything else messages.ErrDeviceFault.
// device is the device index, or negative for calls about no one device;
// name is the driver's name for code, such as "CUDA_ERROR_ILLEGAL_ADDRESS",
// or empty if unknown. The message never carries a device address.
func cudaResultError(device int, op string, code int, name string) error {
	kind := messages.ErrDeviceFault
	switch code {
	case cudaErrorOutOfMemory:
		kind = messages.ErrInsufficientVRAM
	case cudaErrorInvalidValue:
		kind = messages.ErrInvalidInput
	}
	if name == "" {
		name = fmt.Sprintf("CUDA error %d", code)
	}
	if device < 0 {
		return fmt.Errorf("%w: cuda: %s: %s", kind, op, name)
	}
	return fmt.Errorf("%w: cuda device %d: %s: %s", kind, device, op, name)
}
