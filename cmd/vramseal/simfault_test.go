package main

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
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

func TestFlipRandomBitChangesExactlyOneBitOfAHeldShard(t *testing.T) {
	empty, err := cuda.NewSim(cuda.SimConfig{Capacity: 1 << 20, Seed: 1})
	require.NoError(t, err)
	t.Cleanup(func() { empty.Close() })
	holder, err := cuda.NewSim(cuda.SimConfig{Capacity: 1 << 20, Seed: 2})
	require.NoError(t, err)
	t.Cleanup(func() { holder.Close() })
	h, err := holder.Allocate(4096)
	require.NoError(t, err)
	before := make([]byte, 4096)
	require.NoError(t, holder.Write(h, 0, before))

	var logs bytes.Buffer
	require.NoError(t, flipRandomBit([]*cuda.Sim{empty, holder}, slog.New(slog.NewTextHandler(&logs, nil))))

	after := make([]byte, 4096)
	require.NoError(t, holder.Read(h, 0, after))
	flipped := 0
	for i := range after {
		for b := after[i] ^ before[i]; b != 0; b &= b - 1 {
			flipped++
		}
	}
	assert.Equal(t, 1, flipped)
	assert.Contains(t, logs.String(), "device=1")
}

func TestFlipRandomBitNeedsAShard(t *testing.T) {
	sim, err := cuda.NewSim(cuda.SimConfig{Capacity: 1 << 20})
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	err = flipRandomBit([]*cuda.Sim{sim}, slog.New(slog.DiscardHandler))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no simulated device holds a shard")
}
