package gpuhealth

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// Ready reports whether the device at index may hold sealed weights, asking
// NVML now. A device is not ready while memory pages wait to be retired
// (older GPUs) or after a row remap failed (Ampere and later): in both cases
// some of its memory is known bad until the GPU is reset. A check the device
// does not support is skipped; a check that fails makes the device not ready,
// and reason says why.
func (n *NVML) Ready(index int) (ready bool, reason string) {
	dev, err := n.handle(index)
	if err != nil {
		return false, err.Error()
	}
	pending, ret := dev.GetRetiredPagesPendingStatus()
	switch {
	case ret == nvml.ERROR_NOT_SUPPORTED:
	case ret != nvml.SUCCESS:
		return false, fmt.Sprintf("device %d: cannot query retired pages: %v", index, ret)
	case pending == nvml.FEATURE_ENABLED:
		return false, fmt.Sprintf("device %d: memory pages are pending retirement; reset the GPU", index)
	}
	_, _, _, failed, ret := dev.GetRemappedRows()
	switch {
	case ret == nvml.ERROR_NOT_SUPPORTED:
	case ret != nvml.SUCCESS:
		return false, fmt.Sprintf("device %d: cannot query row remapping: %v", index, ret)
	case failed:
		return false, fmt.Sprintf("device %d: a memory row remap failed; the GPU needs service", index)
	}
	return true, ""
}
