package main

import (
	cryptorand "crypto/rand"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/sealer"
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

// plantedFlip is the bit --sim-fault flips: chosen from the sealed shards by
// the seed, flipped later, and then either detected (a fail-stop) or not.
type plantedFlip struct {
	seed   uint64
	shard  sealer.Shard
	offset int64
	bit    uint
	// flippedAt is when the bit was flipped; zero until then.
	flippedAt time.Time
}

// planFlip chooses a shard, a byte in it and a bit with the seed: the same
// seed and shards give the same choice every run.
func planFlip(shards []sealer.Shard, seed uint64) *plantedFlip {
	rng := rand.New(rand.NewPCG(seed, simFaultStream))
	s := shards[rng.IntN(len(shards))]
	return &plantedFlip{seed: seed, shard: s, offset: rng.Int64N(s.Size), bit: uint(rng.IntN(8))}
}

// simFaultStream is the PCG stream planFlip draws from.
const simFaultStream = 0x5eed

// chunk is the index of the chunk the flip lands in.
func (p *plantedFlip) chunk() int64 { return p.offset / p.shard.ChunkSize }

// logAttrs describe the flip for log lines.
func (p *plantedFlip) logAttrs() []any {
	return []any{"shard", p.shard.ID, "device", p.shard.Device, "chunk", p.chunk(), "offset", p.offset, "bit", p.bit, "seed", p.seed}
}

// flip flips the planned bit in the simulated memory that holds the shard.
// The CLI seals one shard at a time, so a device's allocations, in the order
// the simulator hands them out, are its shards in the order they were sealed.
func (p *plantedFlip) flip(sims []*cuda.Sim, shards []sealer.Shard, now time.Time) error {
	k := 0
	for _, s := range shards {
		if s.ID == p.shard.ID {
			break
		}
		if s.Device == p.shard.Device {
			k++
		}
	}
	allocs := sims[p.shard.Device].Allocations()
	if k >= len(allocs) || allocs[k].Size != p.shard.Size {
		return fmt.Errorf("--sim-fault: cannot find the memory of shard %q on simulated device %d", p.shard.ID, p.shard.Device)
	}
	if err := sims[p.shard.Device].FlipBit(allocs[k].Handle, p.offset, p.bit); err != nil {
		return fmt.Errorf("--sim-fault: %w", err)
	}
	p.flippedAt = now
	return nil
}

// detectionBound is, at most, how long after sealing the scrub needs to
// catch a flip made after delay: the pause before the next pass plus two
// passes (the one under way may already have read the flipped chunk), each
// as long as --scrub-rate makes the fullest device's bytes take. Zero means
// it never will: scrubbing is off.
func (o *runOptions) detectionBound(fullestDeviceBytes int64) time.Duration {
	if o.verifyInterval == 0 {
		return 0
	}
	var pass time.Duration
	if rate := o.scrubRate.bytesPerSecond; rate > 0 {
		pass = time.Duration(float64(fullestDeviceBytes) / float64(rate) * float64(time.Second))
	}
	return o.simFault.after + o.verifyInterval + 2*pass
}

// warnUndetectable warns, before the flip, when this run cannot catch it.
func (w *worker) warnUndetectable(p *plantedFlip, fullestDeviceBytes int64) {
	o := w.opts
	bound := o.detectionBound(fullestDeviceBytes)
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
func (p *plantedFlip) undetectedError(o *runOptions) error {
	if p == nil || p.flippedAt.IsZero() {
		return withExitCode(exitFailure, fmt.Errorf("--sim-fault: the run ended before the bit flip planned for %s after sealing was made, so nothing was tested; lengthen --duration", o.simFault.after))
	}
	why := fmt.Sprintf("the run ended %s after the flip", time.Since(p.flippedAt).Round(time.Millisecond))
	if o.verifyInterval == 0 {
		why = "scrubbing was off (--verify-interval 0)"
	}
	return withExitCode(exitFailure, fmt.Errorf("--sim-fault: the bit flipped in shard %q (device %d, chunk %d, byte %d) was NOT detected: %s",
		p.shard.ID, p.shard.Device, p.chunk(), p.offset, why))
}
