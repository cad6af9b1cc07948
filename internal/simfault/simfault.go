// Package simfault plants a fault in a sealed shard on a simulated GPU, to
// show a worker detect it and fail-stop ("vramseal run --sim-fault"): Plan
// chooses a bit of one shard with a seed, Flip.Apply flips it in the
// cuda.Sim's memory, and DetectionBound says how long the scrub may take to
// catch it. It works on simulated devices only.
package simfault

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/sealer"
)

// Flip is one planned bit flip: chosen from the sealed shards by the seed,
// flipped later, and then either detected (a fail-stop) or not.
type Flip struct {
	Seed   uint64
	Shard  sealer.Shard
	Offset int64
	Bit    uint
	// FlippedAt is when the bit was flipped; zero until then.
	FlippedAt time.Time
}

// stream is the PCG stream Plan draws from.
const stream = 0x5eed

// Plan chooses a shard, a byte in it and a bit with the seed: the same seed
// and shards give the same choice every run. shards must not be empty.
func Plan(shards []sealer.Shard, seed uint64) *Flip {
	rng := rand.New(rand.NewPCG(seed, stream))
	s := shards[rng.IntN(len(shards))]
	return &Flip{Seed: seed, Shard: s, Offset: rng.Int64N(s.Size), Bit: uint(rng.IntN(8))}
}

// Chunk is the index of the chunk the flip lands in.
func (f *Flip) Chunk() int64 { return f.Offset / f.Shard.ChunkSize }

// LogAttrs describe the flip for log lines.
func (f *Flip) LogAttrs() []any {
	return []any{"shard", f.Shard.ID, "device", f.Shard.Device, "chunk", f.Chunk(), "offset", f.Offset, "bit", f.Bit, "seed", f.Seed}
}

// Apply flips the planned bit in the simulated memory that holds the shard,
// sims being the runtime's devices by index, and notes now as FlippedAt.
// The shard's memory is the allocation of its size on its device whose
// bytes hash to its digest, so shards sealed in any order are found.
func (f *Flip) Apply(sims []*cuda.Sim, now time.Time) error {
	if f.Shard.Device < 0 || f.Shard.Device >= len(sims) {
		return fmt.Errorf("shard %q is on device %d, which is not simulated", f.Shard.ID, f.Shard.Device)
	}
	sim := sims[f.Shard.Device]
	h, err := find(sim, f.Shard)
	if err != nil {
		return err
	}
	if err := sim.FlipBit(h, f.Offset, f.Bit); err != nil {
		return err
	}
	f.FlippedAt = now
	return nil
}

// find is the allocation on sim that holds shard.
func find(sim *cuda.Sim, shard sealer.Shard) (cuda.Handle, error) {
	want, err := hex.DecodeString(shard.Digest)
	if err != nil {
		return 0, fmt.Errorf("shard %q: digest: %w", shard.ID, err)
	}
	buf := make([]byte, min(shard.Size, 4<<20))
	for _, a := range sim.Allocations() {
		if a.Size != shard.Size {
			continue
		}
		h := sha256.New()
		for off := int64(0); off < a.Size; off += int64(len(buf)) {
			p := buf[:min(int64(len(buf)), a.Size-off)]
			if err := sim.Read(a.Handle, off, p); err != nil {
				return 0, err
			}
			h.Write(p)
		}
		if bytes.Equal(h.Sum(nil), want) {
			return a.Handle, nil
		}
	}
	return 0, fmt.Errorf("cannot find the memory of shard %q on simulated device %d", shard.ID, shard.Device)
}

// DetectionBound is, at most, how long after sealing the scrub needs to
// catch a flip made after delay: the pause before the next pass
// (verifyInterval) plus two passes (the one under way may already have read
// the flipped chunk), each as long as scrubRate (bytes per second; 0 for
// unlimited) makes the fullest device's bytes take. Zero means it never
// will: scrubbing is off.
func DetectionBound(after, verifyInterval time.Duration, scrubRate, fullestDeviceBytes int64) time.Duration {
	if verifyInterval == 0 {
		return 0
	}
	var pass time.Duration
	if scrubRate > 0 {
		pass = time.Duration(float64(fullestDeviceBytes) / float64(scrubRate) * float64(time.Second))
	}
	return after + verifyInterval + 2*pass
}
