package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
)

func TestPickDeviceTakesTheMostAvailableThatFits(t *testing.T) {
	tests := []struct {
		name      string
		available []int64
		size      int64
		want      int
	}{
		{"most available", []int64{10, 30, 20}, 5, 1},
		{"tie goes to the lower index", []int64{30, 30}, 5, 0},
		{"exact fit", []int64{10, 5}, 10, 0},
		{"none fits", []int64{10, 5}, 11, -1},
		{"no devices", nil, 1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, pickDevice(tt.available, tt.size))
		})
	}
}

func TestAvailableBytesKeepsHeadroomAndIsNeverNegative(t *testing.T) {
	assert.Equal(t, int64(70), availableBytes(100, 30))
	assert.Equal(t, int64(0), availableBytes(100, 300))
}

func TestPlanPlacementNamesTheFirstShardThatDoesNotFit(t *testing.T) {
	src := func(name string, size int64) *modelSource { return &modelSource{name: name, size: size} }
	tests := []struct {
		name      string
		available []int64
		srcs      []*modelSource
		wantErr   string
	}{
		{name: "fits", available: []int64{100, 100}, srcs: []*modelSource{src("a", 100), src("b", 60), src("c", 40)}},
		{name: "larger than every device", available: []int64{100, 50}, srcs: []*modelSource{src("a", 10), src("big", 101)},
			wantErr: "big is 101 B but the largest device has 100 B available; FIX"},
		{name: "does not fit beside the others", available: []int64{100, 100}, srcs: []*modelSource{src("a", 80), src("b", 80), src("c", 30)},
			wantErr: "c (30 B) does not fit beside the shards before it: the devices have 40 B available in all; FIX"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := planPlacement(tt.available, tt.srcs, "FIX")
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.wantErr, err.Error())
			assert.Equal(t, exitUsage, exitCodeOf(err, true))
		})
	}
}

// fakeCapacity answers Capacity from a fixed table.
type fakeCapacity []messages.Capacity

func (f fakeCapacity) Devices() int { return len(f) }

func (f fakeCapacity) Capacity(_ context.Context, device int) (messages.Capacity, error) {
	return f[device], nil
}

func TestPlaceSourcesUsesFreeMemoryLessHeadroom(t *testing.T) {
	rt := fakeCapacity{
		{Device: 0, Free: 100, Headroom: 60},
		{Device: 1, Free: 80, Headroom: 0},
	}
	devs, err := placeSources(context.Background(), rt, []*modelSource{{name: "a", size: 50}})
	require.NoError(t, err)
	assert.Equal(t, []int{1}, devs)

	_, err = placeSources(context.Background(), rt, []*modelSource{{name: "a", size: 81}})
	assert.ErrorIs(t, err, messages.ErrInsufficientVRAM)
}

func TestPlaceSourcesSpreadsAcrossDevices(t *testing.T) {
	rt := fakeCapacity{{Device: 0, Free: 100}, {Device: 1, Free: 100}, {Device: 2, Free: 60}}
	srcs := []*modelSource{{name: "a", size: 50}, {name: "b", size: 50}, {name: "c", size: 50}, {name: "d", size: 40}}
	devs, err := placeSources(context.Background(), rt, srcs)
	require.NoError(t, err)
	assert.Equal(t, []int{0, 1, 2, 0}, devs, "each onto the device with the most left once the ones before are placed")

	_, err = placeSources(context.Background(), rt, append(srcs, &modelSource{name: "e", size: 51}))
	assert.ErrorIs(t, err, messages.ErrInsufficientVRAM, "the devices are full once the others are placed")
}
