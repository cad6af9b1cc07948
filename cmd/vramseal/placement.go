package main

import (
	"context"
	"fmt"

	"github.com/vramseal/vramseal/messages"
)

// pickDevice returns the device with the most bytes available that can hold
// size bytes, or -1 if none can. Ties go to the lower index.
func pickDevice(available []int64, size int64) int {
	best := -1
	for i, a := range available {
		if a >= size && (best < 0 || a > available[best]) {
			best = i
		}
	}
	return best
}

// availableBytes is what a device can still take: its free memory less the
// headroom kept free, never negative.
func availableBytes(free, headroom int64) int64 { return max(free-headroom, 0) }

// planPlacement checks, before anything is sealed, that every source fits:
// each on its own on the device with the most memory available, and all of
// them together when placed in order as the worker will place them.
// available is each device's free memory less headroom; fix says how to get
// more. The error is a usage error naming the first source that does not fit.
func planPlacement(available []int64, srcs []*modelSource, fix string) error {
	largest := int64(0)
	for _, a := range available {
		largest = max(largest, a)
	}
	for _, src := range srcs {
		if src.size > largest {
			return usageErrorf("%s is %s but the largest device has %s available; %s",
				src.name, messages.HumanBytes(src.size), messages.HumanBytes(largest), fix)
		}
	}
	left := append([]int64(nil), available...)
	for _, src := range srcs {
		dev := pickDevice(left, src.size)
		if dev < 0 {
			return usageErrorf("%s (%s) does not fit beside the shards before it: the devices have %s available in all; %s",
				src.name, messages.HumanBytes(src.size), messages.HumanBytes(sum(left)), fix)
		}
		left[dev] -= src.size
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

// capacityReader is the part of the runtime placement asks.
type capacityReader interface {
	Devices() int
	Capacity(ctx context.Context, device int) (messages.Capacity, error)
}

// placeSources gives each source a device, in order, each the one with the
// most memory available once the sources before it are placed, from what
// the runtime reports now (free memory less headroom).
func placeSources(ctx context.Context, rt capacityReader, srcs []*modelSource) ([]int, error) {
	left := make([]int64, rt.Devices())
	for i := range left {
		c, err := rt.Capacity(ctx, i)
		if err != nil {
			return nil, err
		}
		left[i] = availableBytes(c.Free, c.Headroom)
	}
	devices := make([]int, len(srcs))
	for i, src := range srcs {
		dev := pickDevice(left, src.size)
		if dev < 0 {
			return nil, fmt.Errorf("%s: %w: no device has %s available", src.name, messages.ErrInsufficientVRAM, messages.HumanBytes(src.size))
		}
		devices[i] = dev
		left[dev] -= src.size
	}
	return devices, nil
}
