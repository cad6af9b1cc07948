package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/sealer"
)

func TestSimFaultFlagParsesBitflipAtADelay(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "bitflip@3s", want: 3 * time.Second},
		{in: "bitflip@500ms", want: 500 * time.Millisecond},
		{in: "bitflip@0s", want: 0},
		{in: "bitflip", wantErr: "use bitflip@DURATION"},
		{in: "meltdown@1s", wantErr: "use bitflip@DURATION"},
		{in: "bitflip@soon", wantErr: "must be a duration"},
		{in: "bitflip@-1s", wantErr: "must be a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var f simFaultFlag
			err := f.Set(tt.in)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.False(t, f.set)
				return
			}
			require.NoError(t, err)
			assert.True(t, f.set)
			assert.Equal(t, tt.want, f.after)
		})
	}
}

func TestPlannedFlipIsTheSeedsChoiceAndChangesOneBitOfThatShard(t *testing.T) {
	sims := make([]*cuda.Sim, 2)
	for i := range sims {
		sim, err := cuda.NewSim(cuda.SimConfig{Capacity: 1 << 20, Seed: int64(i + 1)})
		require.NoError(t, err)
		t.Cleanup(func() { sim.Close() })
		sims[i] = sim
	}
	// Shards sealed one at a time, alternating devices, as the CLI does.
	var shards []sealer.Shard
	memory := map[string]string{} // shard ID -> "device/allocation index", as readAll keys it
	for i, size := range []int64{4096, 8192, 4096, 16384} {
		device := i % 2
		_, err := sims[device].Allocate(size)
		require.NoError(t, err)
		id := fmt.Sprintf("s%d", i)
		shards = append(shards, sealer.Shard{ID: id, Device: device, Size: size, ChunkSize: 4096})
		memory[id] = fmt.Sprintf("%d/%d", device, len(sims[device].Allocations())-1)
	}

	first := planFlip(shards, 42)
	again := planFlip(shards, 42)
	assert.Equal(t, first, again, "the same seed makes the same choice")
	choices := map[string]bool{}
	for seed := range uint64(64) {
		choices[planFlip(shards, seed).shard.ID] = true
	}
	assert.Len(t, choices, len(shards), "seeds reach every shard")

	for seed := range uint64(16) {
		p := planFlip(shards, seed)
		before := readAll(t, sims)
		require.NoError(t, p.flip(sims, shards, time.Now()))
		after := readAll(t, sims)
		var changed []string
		for key, b := range before {
			for i := range b {
				if d := b[i] ^ after[key][i]; d != 0 {
					assert.Equal(t, byte(1)<<p.bit, d)
					assert.Equal(t, p.offset, int64(i))
					changed = append(changed, key)
				}
			}
		}
		assert.Equal(t, []string{memory[p.shard.ID]}, changed, "seed %d: one bit of shard %s", seed, p.shard.ID)
		assert.False(t, p.flippedAt.IsZero())
	}
}

// readAll copies every allocation of every device, keyed "device/index".
func readAll(t *testing.T, sims []*cuda.Sim) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for d, sim := range sims {
		for i, a := range sim.Allocations() {
			b := make([]byte, a.Size)
			require.NoError(t, sim.Read(a.Handle, 0, b))
			out[fmt.Sprintf("%d/%d", d, i)] = b
		}
	}
	return out
}

func TestDetectionBoundCoversThePauseAndTwoPasses(t *testing.T) {
	o := &runOptions{verifyInterval: 2 * time.Second, scrubRate: rateFlag{bytesPerSecond: 1 << 20}}
	o.simFault.after = 3 * time.Second
	assert.Equal(t, 3*time.Second+2*time.Second+2*4*time.Second, o.detectionBound(4<<20))
	o.verifyInterval = 0
	assert.Zero(t, o.detectionBound(4<<20), "no scrub, no detection")
}

// FuzzSimFaultFlag fuzzes the CLI's own duration syntax, bitflip@DURATION:
// an accepted value is never negative and reads back from its printed form.
func FuzzSimFaultFlag(f *testing.F) {
	for _, seed := range []string{"bitflip@3s", "bitflip@500ms", "bitflip@0", "bitflip@-1s", "bitflip@", "bitflip", "@3s", "bitflip@1h2m3.5s", "bitflip@9223372036854775807ns", "bitflip@1e3s", "bitflip@3s@4s"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var flag simFaultFlag
		if err := flag.Set(s); err != nil {
			return
		}
		if flag.after < 0 {
			t.Fatalf("%q gives a negative delay %s", s, flag.after)
		}
		var back simFaultFlag
		if err := back.Set(flag.String()); err != nil || back != flag {
			t.Fatalf("%q prints as %q, which reads back as %+v, %v", s, flag.String(), back, err)
		}
	})
}

// FuzzDurationBounds fuzzes the durations run's flags take (parsed as pflag
// parses them) through the bounds: no positive value checkBounds accepts is
// below its minimum, whatever the text was (validate refuses negative ones).
func FuzzDurationBounds(f *testing.F) {
	for _, seed := range []string{"1ns", "99ms", "100ms", "30s", "0", "-1s", "1h", "9223372036854775807ns", "0.0001s", "1e2ms"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return
		}
		o := &runOptions{verifyInterval: d, contentionInterval: d}
		if o.checkBounds() != nil {
			return
		}
		if d > 0 && d < minVerifyInterval {
			t.Fatalf("--verify-interval %s (%q) passed the bounds", d, s)
		}
	})
}
