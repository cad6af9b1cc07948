package backend

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/gpuhealth"
	"github.com/vramseal/vramseal/messages"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestOpenSimsMakesNamedDevicesOfTheGivenSize(t *testing.T) {
	set, err := OpenSims(SimSpec{Count: 3, Capacity: 1 << 20}, "no NVIDIA driver found")
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, set.Close()) })
	assert.True(t, set.Simulated())
	assert.Equal(t, "no NVIDIA driver found", set.Reason)
	require.Len(t, set.Devices, 3)
	require.Len(t, set.Sims, 3)
	uuids := map[string]bool{}
	for i, d := range set.Devices {
		assert.Same(t, set.Sims[i], d)
		p := d.Properties()
		assert.Equal(t, fmt.Sprintf("%s %d", cuda.DefaultSimName, i), p.Name)
		assert.EqualValues(t, 1<<20, p.TotalMemory)
		uuids[p.UUID] = true
	}
	assert.Len(t, uuids, 3, "each device its own")

	_, err = OpenSims(SimSpec{Count: 2}, "")
	assert.ErrorIs(t, err, messages.ErrConfig)
}

// machine is a Source whose CUDA driver shows sims, or fails with countErr;
// opening GPU failAt fails.
type machine struct {
	sims     []*cuda.Sim
	countErr error
	failAt   int
}

func (m *machine) source() gpuhealth.Source {
	return gpuhealth.Source{
		DeviceCount: func() (int, error) { return len(m.sims), m.countErr },
		OpenDevice: func(i int) (cuda.Device, error) {
			if i == m.failAt {
				return nil, errors.New("driver said no")
			}
			return m.sims[i], nil
		},
	}
}

func newMachine(t *testing.T, n int) *machine {
	m := &machine{failAt: -1}
	for range n {
		sim, err := cuda.NewSim(cuda.SimConfig{Capacity: 1 << 20})
		require.NoError(t, err)
		m.sims = append(m.sims, sim)
	}
	return m
}

func TestOpenGPUsOpensEveryGPUOrNone(t *testing.T) {
	m := newMachine(t, 2)
	set, err := OpenGPUs(m.source(), false)
	require.NoError(t, err)
	assert.False(t, set.Simulated())
	assert.Equal(t, CUDA, set.Kind)
	require.Len(t, set.Devices, 2)
	require.NoError(t, set.Close())

	m = newMachine(t, 2)
	m.failAt = 1
	_, err = OpenGPUs(m.source(), false)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "open GPU 1: driver said no")
	_, err = m.sims[0].Allocate(1)
	assert.Error(t, err, "the GPU opened before the failure is closed again")
	require.NoError(t, m.sims[1].Close())

	_, err = OpenGPUs(newMachine(t, 0).source(), false)
	assert.ErrorIs(t, err, messages.ErrConfig, "a driver without GPUs")

	noDriver := &machine{countErr: fmt.Errorf("load libcuda: %w", cuda.ErrNoDriver)}
	_, err = OpenGPUs(noDriver.source(), false)
	assert.ErrorIs(t, err, cuda.ErrNoDriver)
}

func TestAutoSimReasonSaysWhyThereAreNoGPUsToUse(t *testing.T) {
	broken := errors.New("driver broke")
	tests := []struct {
		name    string
		m       *machine
		want    string
		wantErr error
	}{
		{name: "GPUs", m: newMachine(t, 1)},
		{name: "no driver", m: &machine{countErr: cuda.ErrNoDriver}, want: "no NVIDIA driver found"},
		{name: "no GPUs", m: &machine{}, want: "the NVIDIA driver reports no GPUs"},
		{name: "driver fails", m: &machine{countErr: broken}, wantErr: broken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range tt.m.sims {
				t.Cleanup(func() { s.Close() })
			}
			got, err := AutoSimReason(tt.m.source())
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
