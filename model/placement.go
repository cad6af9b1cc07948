package model

import (
	"context"
	"fmt"

	"github.com/vramseal/vramseal/internal/units"
	"github.com/vramseal/vramseal/messages"
)

// PickDevice returns the device with the most bytes available that can hold
// size bytes, or -1 if none can. Ties go to the lower index.
func PickDevice(available []int64, size int64) int {
	best := -1
	for i, a := range available {
		if a >= size && (best < 0 || a > available[best]) {
			best = i
		}
	}
	return best
}

// AvailableBytes is what a device can still take: its free memory less the
// headroom kept free, never negative.
func AvailableBytes(free, headroom int64) int64 { return max(free-headroom, 0) }

// FitError says that a source does not fit on the devices. It matches
// messages.ErrInsufficientVRAM with errors.Is.
type FitError struct {
	// Source names the source, Size its bytes.
	Source string
	Size   int64
	// Beside says the source fits on its own but not beside the sources
	// placed before it; Available is then what all the devices have left,
	// and otherwise what the largest device has.
	Beside    bool
	Available int64
}

// Error names the source, its size and what the devices have.
func (e *FitError) Error() string {
	if e.Beside {
		return fmt.Sprintf("%s (%s) does not fit beside the shards before it: the devices have %s available in all",
			e.Source, units.Bytes(e.Size), units.Bytes(e.Available))
	}
	return fmt.Sprintf("%s is %s but the largest device has %s available",
		e.Source, units.Bytes(e.Size), units.Bytes(e.Available))
}

// Is makes errors.Is(err, messages.ErrInsufficientVRAM) true.
func (e *FitError) Is(target error) bool { return target == messages.ErrInsufficientVRAM }

// Plan checks, before anything is sealed, that every source fits: each on
// its own on the device with the most memory available, and all of them
// together when placed in order as Place will place them. available is each
// device's free memory less headroom. The error is a *FitError naming the
// first source that does not fit.
func Plan(available []int64, srcs []*Source) error {
	largest := int64(0)
	for _, a := range available {
		largest = max(largest, a)
	}
	for _, src := range srcs {
		if src.Size > largest {
			return &FitError{Source: src.Name, Size: src.Size, Available: largest}
		}
	}
	left := append([]int64(nil), available...)
	for _, src := range srcs {
		dev := PickDevice(left, src.Size)
		if dev < 0 {
			return &FitError{Source: src.Name, Size: src.Size, Beside: true, Available: sum(left)}
		}
		left[dev] -= src.Size
	}
	return nil
}

func sum(xs []int64) int64 {
	var total int64
	for _, x := range xs {
		total += x
	}
	return total
}

// Capacities is the part of a runtime placement asks; *supervisor.Runtime
// has it.
type Capacities interface {
	Devices() int
	Capacity(ctx context.Context, device int) (messages.Capacity, error)
}

// Place gives each source a device, in order, each the one with the most
// memory available once the sources before it are placed, from what rt
// reports now (free memory less headroom).
func Place(ctx context.Context, rt Capacities, srcs []*Source) ([]int, error) {
	left := make([]int64, rt.Devices())
	for i := range left {
		c, err := rt.Capacity(ctx, i)
		if err != nil {
			return nil, err
		}
		left[i] = AvailableBytes(c.Free, c.Headroom)
	}
	devices := make([]int, len(srcs))
	for i, src := range srcs {
		dev := PickDevice(left, src.Size)
		if dev < 0 {
			return nil, fmt.Errorf("%s: %w: no device has %s available", src.Name, messages.ErrInsufficientVRAM, units.Bytes(src.Size))
		}
		devices[i] = dev
		left[dev] -= src.Size
	}
	return devices, nil
}
