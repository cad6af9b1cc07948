package main

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/vramseal/vramseal/cuda"
)

// simFaultFlag is --sim-fault bitflip@DURATION: once sealing is done and
// DURATION has passed, flip one bit of one shard in simulated VRAM, to show
// the worker detect it and fail-stop.
type simFaultFlag struct {
	set   bool
	after time.Duration
}

// String is the flag as given, or "" when unset.
func (f *simFaultFlag) String() string {
	if !f.set {
		return ""
	}
	return "bitflip@" + f.after.String()
}

// Set parses "bitflip@DURATION", such as "bitflip@3s".
func (f *simFaultFlag) Set(s string) error {
	kind, delay, ok := strings.Cut(s, "@")
	if !ok || kind != "bitflip" {
		return fmt.Errorf("%q is not a fault vramseal can inject; use bitflip@DURATION, e.g. bitflip@3s", s)
	}
	after, err := time.ParseDuration(delay)
	if err != nil || after < 0 {
		return fmt.Errorf("%q: the delay after @ must be a duration such as 500ms or 3s", s)
	}
	f.set, f.after = true, after
	return nil
}

// Type names the flag's form in --help.
func (f *simFaultFlag) Type() string { return "bitflip@DURATION" }

// simFaultOnRealGPUsError is the usage error for --sim-fault with real GPUs.
func simFaultOnRealGPUsError() error {
	return usageErrorf("--sim-fault flips bits in simulated VRAM and cannot run on real GPUs; drop it, or use --backend sim")
}

// flipRandomBit flips one bit of one allocation on one of the simulated
// devices that hold any, chosen at random.
func flipRandomBit(sims []*cuda.Sim, logger *slog.Logger) error {
	var candidates []int
	for i, s := range sims {
		if s.Outstanding() > 0 {
			candidates = append(candidates, i)
		}
	}
	if len(candidates) == 0 {
		return fmt.Errorf("--sim-fault: no simulated device holds a shard to flip a bit in")
	}
	dev := candidates[rand.IntN(len(candidates))]
	_, offset, bit, err := sims[dev].FlipRandomBit()
	if err != nil {
		return fmt.Errorf("--sim-fault: %w", err)
	}
	logger.Warn("sim-fault: flipped one bit in simulated VRAM", "device", dev, "offset", offset, "bit", bit)
	return nil
}
