package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/gpuhealth"
)

// Backends a command can ask for.
const (
	backendAuto = "auto"
	backendSim  = "sim"
	backendCUDA = "cuda"
)

// backendFlags choose the devices: real GPUs, simulated ones, or whichever
// the machine has.
type backendFlags struct {
	kind       *choiceFlag
	simDevices int
	simVRAM    sizeFlag
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

// deviceSet is the devices a command opened.
type deviceSet struct {
	devices []cuda.Device
	// sims holds the same devices as *cuda.Sim when they are simulated.
	sims []*cuda.Sim
	// backend is backendSim or backendCUDA.
	backend string
	// reason says why auto chose the backend; empty when it was asked for.
	reason string
}

// simulated reports whether the devices are simulated.
func (s *deviceSet) simulated() bool { return s.backend == backendSim }

// close closes every device. Devices handed to a runtime are its to close.
func (s *deviceSet) close() error {
	var errs []error
	for _, d := range s.devices {
		errs = append(errs, d.Close())
	}
	return errors.Join(errs...)
}

// openDevices opens the devices the flags ask for, the real ones from gpus.
// With auto, real GPUs are used when the CUDA driver answers and has at least
// one; otherwise simulated ones, and the reason says why.
func (f *backendFlags) openDevices(gpus gpuhealth.Source) (*deviceSet, error) {
	switch f.kind.String() {
	case backendSim:
		return f.openSims("")
	case backendCUDA:
		set, err := openCUDA(gpus)
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
	return openCUDA(gpus)
}

// autoSimReason says why --backend auto falls back to simulated devices on
// this machine, or "" when it uses the real GPUs.
func autoSimReason(gpus gpuhealth.Source) (string, error) {
	count, err := gpus.DeviceCount()
	switch {
	case errors.Is(err, cuda.ErrNoDriver):
		return "no NVIDIA driver found", nil
	case err != nil:
		return "", fmt.Errorf("query the CUDA driver: %w; use --backend sim to run on simulated devices", err)
	case count == 0:
		return "the NVIDIA driver reports no GPUs", nil
	}
	return "", nil
}

// openSims makes the simulated devices the flags describe.
func (f *backendFlags) openSims(reason string) (*deviceSet, error) {
	set := &deviceSet{backend: backendSim, reason: reason}
	for i := range f.simDevices {
		sim, err := cuda.NewSim(cuda.SimConfig{
			Name:     fmt.Sprintf("%s %d", cuda.DefaultSimName, i),
			Capacity: f.simVRAM.bytes,
			Seed:     int64(i + 1),
		})
		if err != nil {
			return nil, errors.Join(withExitCode(exitUsage, err), set.close())
		}
		set.devices = append(set.devices, sim)
		set.sims = append(set.sims, sim)
	}
	return set, nil
}

// openCUDA opens every GPU the CUDA driver reports.
func openCUDA(gpus gpuhealth.Source) (*deviceSet, error) {
	count, err := gpus.DeviceCount()
	if err != nil {
		return nil, err
	}
	if count == 0 {
		return nil, usageErrorf("the NVIDIA driver reports no GPUs; use --backend sim for simulated devices")
	}
	set := &deviceSet{backend: backendCUDA}
	for i := range count {
		d, err := gpus.OpenDevice(i)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("open GPU %d: %w", i, err), set.close())
		}
		set.devices = append(set.devices, d)
	}
	return set, nil
}
