package cuda

import (
	"fmt"

	"github.com/vramseal/vramseal/messages"
)

// CheckVRAMPolicy refuses a device whose memory is not dedicated VRAM.
//
// Sealed weights must live in device memory that the host cannot page, map
// or share. The backends guarantee their half: Driver obtains memory only
// from cuMemAlloc (never managed, host-mapped or pinned host memory; a test
// scans its source to keep it so), and Sim is for tests. The device must
// guarantee the other half: an integrated GPU has no VRAM of its own, so
// cuMemAlloc hands out system RAM and the weights would sit in host memory.
// Such a device fails with an error wrapping messages.ErrPolicyViolation.
//
// ManagedMemory and PageableMemoryAccess describe what a discrete device
// could do with host memory; vramseal never asks it to, so they pass.
func CheckVRAMPolicy(p Properties) error {
	if p.Integrated {
		return fmt.Errorf("%w: %s is an integrated GPU whose memory is system RAM; weights must stay in dedicated VRAM",
			messages.ErrPolicyViolation, deviceName(p))
	}
	return nil
}

// deviceName names a device for a message, quoting what the backend says.
func deviceName(p Properties) string {
	if p.Name == "" {
		return "the device"
	}
	return fmt.Sprintf("%q", p.Name)
}
