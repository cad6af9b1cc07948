package supervisor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// integrated is a simulated GPU that claims to share system memory.
type integrated struct{ *cuda.Sim }

func (d integrated) Properties() cuda.Properties {
	p := d.Sim.Properties()
	p.Integrated = true
	return p
}

func TestStartRefusesIntegratedGPUs(t *testing.T) {
	key, err := sealer.DeriveKey([]byte("policy-token-0123456789"), "w")
	require.NoError(t, err)
	good, err := cuda.NewSim(cuda.SimConfig{Capacity: MiB, Seed: 1})
	require.NoError(t, err)
	bad, err := cuda.NewSim(cuda.SimConfig{Capacity: MiB, Seed: 2})
	require.NoError(t, err)
	log := audit.NewMemory()

	_, err = Start(context.Background(), Config{Devices: []cuda.Device{good, integrated{bad}}, Key: key, WorkerID: "w", Audit: log})
	require.ErrorIs(t, err, messages.ErrPolicyViolation)
	assert.Contains(t, err.Error(), "device 1")

	records := log.Records()
	require.Len(t, records, 1, "the violation is recorded and the worker never starts")
	assert.Equal(t, audit.EventPolicyViolation, records[0].Event)
	assert.Equal(t, audit.SeverityCritical, records[0].Severity)
	assert.Equal(t, 1, records[0].Fields["device"])
	_, err = good.Allocate(1)
	assert.ErrorIs(t, err, messages.ErrStopped, "Start closed the devices it was given")
}
