package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/cuda/driver"
	"github.com/vramseal/vramseal/gpuhealth"
	"github.com/vramseal/vramseal/internal/backend"
	"github.com/vramseal/vramseal/messages"
)

// Backends a command can ask for: auto, or one of backend's kinds.
const (
	backendAuto = "auto"
	backendSim  = backend.Sim
	backendCUDA = backend.CUDA
)

// backendFlags choose the devices: real GPUs, simulated ones, or whichever
// the machine has.
type backendFlags struct {
	kind       *choiceFlag
	simDevices int
	simVRAM    sizeFlag
	// shareable makes the devices' memory shareable with other processes
	// (run --serve): memfds on simulated devices, CUDA virtual memory
	// allocations on GPUs.
	shareable bool
}

// register adds --backend, --sim-devices and --sim-vram to cmd.
func (f *backendFlags) register(cmd *cobra.Command) {
	f.kind = newChoiceFlag(backendAuto, backendAuto, backendSim, backendCUDA)
	f.simVRAM = sizeFlag{bytes: 2 << 30}
	cmd.Flags().Var(f.kind, "backend", "devices to use: auto picks real GPUs when the NVIDIA driver answers, else simulated ones")
	cmd.Flags().IntVar(&f.simDevices, "sim-devices", 2, "number of simulated devices")
	cmd.Flags().Var(&f.simVRAM, "sim-vram", "memory of each simulated device (e.g. 512MiB, 2GiB, 1.5GB)")
}

// validate checks the simulated device flags.
func (f *backendFlags) validate() error {
	if f.simDevices < 1 {
		return usageErrorf("--sim-devices %d: need at least 1 simulated device", f.simDevices)
	}
	if f.simVRAM.bytes <= 0 {
		return usageErrorf("--sim-vram must be more than 0 bytes, e.g. --sim-vram 2GiB")
	}
	return f.checkBounds()
}

// openDevices opens the devices the flags ask for, the real ones from gpus.
// With auto, real GPUs are used when the CUDA driver answers and has at least
// one; otherwise simulated ones, and the set's Reason says why.
func (f *backendFlags) openDevices(gpus gpuhealth.Source) (*backend.Set, error) {
	switch f.kind.String() {
	case backendSim:
		return f.openSims("")
	case backendCUDA:
		set, err := openGPUs(gpus, f.shareable)
		if errors.Is(err, cuda.ErrNoDriver) {
			return nil, usageErrorf("--backend cuda: %v; install the NVIDIA driver, or use --backend sim for simulated devices", err)
		}
		return set, err
	}
	reason, err := autoSimReason(gpus)
	switch {
	case err != nil:
		return nil, err
	case reason != "":
		return f.openSims(reason)
	}
	return openGPUs(gpus, f.shareable)
}

// autoSimReason is backend.AutoSimReason, its error saying how to run anyway.
func autoSimReason(gpus gpuhealth.Source) (string, error) {
	reason, err := backend.AutoSimReason(gpus)
	if err != nil {
		return "", fmt.Errorf("%w; use --backend sim to run on simulated devices", err)
	}
	return reason, nil
}

// openSims makes the simulated devices the flags describe.
func (f *backendFlags) openSims(reason string) (*backend.Set, error) {
	set, err := backend.OpenSims(backend.SimSpec{Count: f.simDevices, Capacity: f.simVRAM.bytes, Shareable: f.shareable}, reason)
	return set, withExitCode(exitUsage, err)
}

// openGPUs opens every GPU the CUDA driver reports, shareable if asked; a
// driver that reports none, or cannot share when asked, is a usage error.
func openGPUs(gpus gpuhealth.Source, shareable bool) (*backend.Set, error) {
	set, err := backend.OpenGPUs(gpus, shareable)
	switch {
	case errors.Is(err, messages.ErrConfig):
		return nil, withExitCode(exitUsage, fmt.Errorf("%w; use --backend sim for simulated devices", err))
	case errors.Is(err, driver.ErrNoVMM):
		return nil, withExitCode(exitUsage, fmt.Errorf("--serve: %w; run without --serve to seal without serving", err))
	}
	return set, err
}
