package gpuhealth

import (
	"fmt"

	"github.com/vramseal/vramseal/messages"
)

// FaultKind says which NVML health event a DeviceFaultError reports.
type FaultKind string

// The health events that are device faults.
const (
	// FaultXID is a critical XID that is not the application's fault.
	FaultXID FaultKind = "xid"
	// FaultDoubleBitECC is an uncorrectable (double-bit) ECC error.
	FaultDoubleBitECC FaultKind = "double_bit_ecc"
)

// DeviceFaultError is a hardware fault NVML reported on one GPU, as a
// healthWatcher hands it to OnFault. It names the GPU by NVML's numbering,
// which is not always the CUDA driver's: match UUID (or Index) to a device's
// Properties().UUID to find which device faulted. It matches
// messages.ErrDeviceFault with errors.Is; get it from a wrapped error with
// errors.As.
type DeviceFaultError struct {
	// Index is NVML's index of the GPU, or -1 when NVML cannot say.
	Index int
	// UUID identifies the GPU, such as "GPU-7f6b..."; empty when NVML
	// cannot say.
	UUID string
	// Kind is the event.
	Kind FaultKind
	// XID is the XID of a FaultXID; zero for an ECC error.
	XID uint64
}

// Error names the GPU by NVML index and the event, such as "device 3: XID 79".
func (e *DeviceFaultError) Error() string {
	return fmt.Sprintf("device %d: %s", e.Index, e.Event())
}

// Event names what NVML reported, such as "XID 79" or "double-bit ECC error".
func (e *DeviceFaultError) Event() string {
	if e.Kind == FaultDoubleBitECC {
		return "double-bit ECC error"
	}
	return fmt.Sprintf("XID %d", e.XID)
}

// Is makes errors.Is(err, messages.ErrDeviceFault) true.
func (e *DeviceFaultError) Is(target error) bool { return target == messages.ErrDeviceFault }
