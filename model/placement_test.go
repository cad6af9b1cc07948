package model_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/modeltest"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/model"
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
			assert.Equal(t, tt.want, model.PickDevice(tt.available, tt.size))
		})
	}
}

func TestAvailableBytesKeepsHeadroomAndIsNeverNegative(t *testing.T) {
	assert.Equal(t, int64(70), model.AvailableBytes(100, 30))
	assert.Equal(t, int64(0), model.AvailableBytes(100, 300))
}

func TestPlanNamesTheFirstShardThatDoesNotFit(t *testing.T) {
	src := func(name string, size int64) *model.Source { return &model.Source{Name: name, Size: size} }
	tests := []struct {
		name      string
		available []int64
		srcs      []*model.Source
		wantErr   string
	}{
		{name: "fits", available: []int64{100, 100}, srcs: []*model.Source{src("a", 100), src("b", 60), src("c", 40)}},
		{name: "larger than every device", available: []int64{100, 50}, srcs: []*model.Source{src("a", 10), src("big", 101)},
			wantErr: "big is 101 B but the largest device has 100 B available"},
		{name: "does not fit beside the others", available: []int64{100, 100}, srcs: []*model.Source{src("a", 80), src("b", 80), src("c", 30)},
			wantErr: "c (30 B) does not fit beside the shards before it: the devices have 40 B available in all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := model.Plan(tt.available, tt.srcs)
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.wantErr, err.Error())
			assert.ErrorIs(t, err, messages.ErrInsufficientVRAM)
			var fit *model.FitError
			require.ErrorAs(t, err, &fit)
			assert.Equal(t, tt.srcs[len(tt.srcs)-1].Name, fit.Source)
		})
	}
}

func TestPlaceSourcesUsesFreeMemoryLessHeadroom(t *testing.T) {
	rt := modeltest.Capacities{
		{Device: 0, Free: 100, Headroom: 60},
		{Device: 1, Free: 80, Headroom: 0},
	}
	devs, err := model.Place(context.Background(), rt, []*model.Source{{Name: "a", Size: 50}})
	require.NoError(t, err)
	assert.Equal(t, []int{1}, devs)

	_, err = model.Place(context.Background(), rt, []*model.Source{{Name: "a", Size: 81}})
	assert.ErrorIs(t, err, messages.ErrInsufficientVRAM)
}

func TestPlaceSourcesSpreadsAcrossDevices(t *testing.T) {
	rt := modeltest.Capacities{{Device: 0, Free: 100}, {Device: 1, Free: 100}, {Device: 2, Free: 60}}
	srcs := []*model.Source{{Name: "a", Size: 50}, {Name: "b", Size: 50}, {Name: "c", Size: 50}, {Name: "d", Size: 40}}
	devs, err := model.Place(context.Background(), rt, srcs)
	require.NoError(t, err)
	assert.Equal(t, []int{0, 1, 2, 0}, devs, "each onto the device with the most left once the ones before are placed")

	_, err = model.Place(context.Background(), rt, append(srcs, &model.Source{Name: "e", Size: 51}))
	assert.ErrorIs(t, err, messages.ErrInsufficientVRAM, "the devices are full once the others are placed")
}
