package main

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/sealer"
)

// deviceHasher is a device that says whether it hashes on itself.
type deviceHasher struct {
	cuda.Device
	onDevice bool
}

func (d deviceHasher) HashesOnDevice() bool { return d.onDevice }

func TestDefaultChunkSizeFollowsWhereHashesRun(t *testing.T) {
	gpu, fallback, sim := deviceHasher{onDevice: true}, deviceHasher{onDevice: false}, cuda.Device(nil)
	for _, tc := range []struct {
		name    string
		devices []cuda.Device
		want    int64
	}{
		{"GPUs whose kernel loaded", []cuda.Device{gpu, gpu}, sealer.MinChunkSize},
		{"a GPU hashing on the host", []cuda.Device{gpu, fallback}, sealer.DefaultChunkSize},
		{"a device that cannot say", []cuda.Device{sim}, sealer.DefaultChunkSize},
		{"no devices", nil, sealer.DefaultChunkSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, defaultChunkSize(tc.devices))
		})
	}
}
