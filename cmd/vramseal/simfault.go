package main

import (
	cryptorand "crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vramseal/vramseal/internal/simfault"
)

// simFaultFlag is --sim-fault bitflip@DURATION: once sealing is done and
// DURATION has passed, flip one bit of one shard in simulated VRAM (chosen
// with --seed), to show the worker detect it and fail-stop.
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

// seedFlag is --seed: the seed of --sim-fault's choice of shard, offset
// and bit. Unset, it is drawn at random, and logged so a run can be repeated.
type seedFlag struct {
	set   bool
	value uint64
}

// String is the seed, or "random" when unset.
func (f *seedFlag) String() string {
	if !f.set {
		return "random"
	}
	return strconv.FormatUint(f.value, 10)
}

// Set parses a non-negative integer.
func (f *seedFlag) Set(s string) error {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not a seed; use a non-negative integer, e.g. --seed 42", s)
	}
	f.set, f.value = true, v
	return nil
}

// Type names the flag's form in --help.
func (f *seedFlag) Type() string { return "N" }

// seed is the flag's seed, or a random one when unset.
func (f *seedFlag) seed() uint64 {
	if f.set {
		return f.value
	}
	var b [8]byte
	cryptorand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// warnUndetectable warns, before the flip, when this run cannot catch it.
func (w *worker) warnUndetectable(fullestDeviceBytes int64) {
	o := w.opts
	bound := simfault.DetectionBound(o.simFault.after, o.verifyInterval, o.scrubRate.bytesPerSecond, fullestDeviceBytes)
	switch {
	case bound == 0:
		w.logger.Warn("sim-fault: scrubbing is off (--verify-interval 0), so nothing will detect the planted flip and the run will exit 1; set e.g. --verify-interval 500ms")
	case o.duration > 0 && o.duration < bound:
		w.logger.Warn("sim-fault: --duration may end before the scrub can catch the planted flip; the run exits 1 if it does. Lengthen --duration or shorten --verify-interval",
			"duration", o.duration.String(), "detection_bound", bound.String())
	}
}

// undetectedError is the error of a run that ended without catching its
// planted flip, or before making it.
func undetectedError(p *simfault.Flip, o *runOptions) error {
	if p == nil || p.FlippedAt.IsZero() {
		return withExitCode(exitFailure, fmt.Errorf("--sim-fault: the run ended before the bit flip planned for %s after sealing was made, so nothing was tested; lengthen --duration", o.simFault.after))
	}
	why := fmt.Sprintf("the run ended %s after the flip", time.Since(p.FlippedAt).Round(time.Millisecond))
	if o.verifyInterval == 0 {
		why = "scrubbing was off (--verify-interval 0)"
	}
	return withExitCode(exitFailure, fmt.Errorf("--sim-fault: the bit flipped in shard %q (device %d, chunk %d, byte %d) was NOT detected: %s",
		p.Shard.ID, p.Shard.Device, p.Chunk(), p.Offset, why))
}
