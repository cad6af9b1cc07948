// Package backend opens the devices a vramseal worker runs on, for the CLI
// and embedders alike: the machine's NVIDIA GPUs, reached through a
// gpuhealth.Source (OpenGPUs), or simulated ones (OpenSims); AutoSimReason
// says when a machine has no GPU to use. It sits above cuda and gpuhealth,
// which it joins, and below the CLI.
package backend

import (
	"errors"
	"fmt"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/gpuhealth"
	"github.com/vramseal/vramseal/messages"
)

// The kinds of devices, as supervisor.Config.Backend and logs name them.
const (
	Sim  = "sim"
	CUDA = "cuda"
)

// Set is the devices a worker opened.
type Set struct {
	Devices []cuda.Device
	// Sims holds the same devices as *cuda.Sim when they are simulated.
	Sims []*cuda.Sim
	// Kind is Sim or CUDA.
	Kind string
	// Reason says why the devices are simulated when the machine was asked
	// for its GPUs and had none (see AutoSimReason); empty otherwise.
	Reason string
}

// Simulated reports whether the devices are simulated.
func (s *Set) Simulated() bool { return s.Kind == Sim }

// Close closes every device. Devices handed to a runtime are its to close.
func (s *Set) Close() error {
	var errs []error
	for _, d := range s.Devices {
		errs = append(errs, d.Close())
	}
	return errors.Join(errs...)
}

// SimSpec describes the simulated devices OpenSims makes.
type SimSpec struct {
	// Count devices of Capacity bytes each.
	Count    int
	Capacity int64
	// Shareable makes their memory shareable with other processes (the
	// lease server's grants; cuda.SimConfig.Shareable).
	Shareable bool
}

// OpenSims makes the simulated devices spec describes, named and seeded by
// index; reason is the Set's Reason. A bad size is messages.ErrConfig.
func OpenSims(spec SimSpec, reason string) (*Set, error) {
	set := &Set{Kind: Sim, Reason: reason}
	for i := range spec.Count {
		sim, err := cuda.NewSim(cuda.SimConfig{
			Name:      fmt.Sprintf("%s %d", cuda.DefaultSimName, i),
			Capacity:  spec.Capacity,
			Seed:      int64(i + 1),
			Shareable: spec.Shareable,
		})
		if err != nil {
			return nil, errors.Join(err, set.Close())
		}
		set.Devices = append(set.Devices, sim)
		set.Sims = append(set.Sims, sim)
	}
	return set, nil
}

// OpenGPUs opens every GPU the CUDA driver reports, shareable with other
// processes if shareable is set (gpus.OpenShareable). Without a driver the
// error wraps cuda.ErrNoDriver; a driver that reports no GPUs, or a source
// that cannot share when asked to, is messages.ErrConfig.
func OpenGPUs(gpus gpuhealth.Source, shareable bool) (*Set, error) {
	open := gpus.OpenDevice
	if shareable {
		if gpus.OpenShareable == nil {
			return nil, fmt.Errorf("%w: these GPUs cannot be opened shareable", messages.ErrConfig)
		}
		open = gpus.OpenShareable
	}
	count, err := gpus.DeviceCount()
	if err != nil {
		return nil, err
	}
	if count == 0 {
		return nil, fmt.Errorf("%w: the NVIDIA driver reports no GPUs", messages.ErrConfig)
	}
	set := &Set{Kind: CUDA}
	for i := range count {
		d, err := open(i)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("open GPU %d: %w", i, err), set.Close())
		}
		set.Devices = append(set.Devices, d)
	}
	return set, nil
}

// AutoSimReason says why a worker that would take the machine's GPUs when
// it has any must run on simulated devices here ("no NVIDIA driver found"),
// or "" when the GPUs are there. The error is a driver that fails to answer.
func AutoSimReason(gpus gpuhealth.Source) (string, error) {
	count, err := gpus.DeviceCount()
	switch {
	case errors.Is(err, cuda.ErrNoDriver):
		return "no NVIDIA driver found", nil
	case err != nil:
		return "", fmt.Errorf("query the CUDA driver: %w", err)
	case count == 0:
		return "the NVIDIA driver reports no GPUs", nil
	}
	return "", nil
}
