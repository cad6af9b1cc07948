package driver_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/cuda/driver"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/supervisor"
)

// TestDriverOnDeviceLeasePointerReachesTheSealedBytes goes through the
// embedding API on CUDA device 0: a runtime over the Driver seals a shard of
// random bytes, acquires it (plain and verified), and each lease's
// DevicePointer, copied out for Size bytes with cuMemcpyDtoH as inference
// code would read it, must hash to the record's digest; once an eviction
// revokes a lease, its DevicePointer fails with ErrRevoked. gpucheck.sh runs it
// on a GPU and TestGPUCheckDryRun over the stand-in libcuda; without
// a driver it skips.
func TestDriverOnDeviceLeasePointerReachesTheSealedBytes(t *testing.T) {
	d := driver.OpenTestDriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang, not a speed, bound
	defer cancel()
	rig, err := supervisor.MakeRig(ctx, supervisor.RigConfig{Config: supervisor.Config{Devices: []cuda.Device{d}, Backend: "cuda"}})
	require.NoError(t, err)
	stop := func() error { return rig.Stop(ctx) }
	defer func() { _ = stop() }() // a failed check still frees the device

	weights := make([]byte, 24<<20+5) // six full chunks of 4 MiB and a short one
	_, _ = rand.Read(weights)         // crypto/rand.Read never fails
	shard, err := rig.Seal(ctx, messages.SealRequest{ID: "layer-0", Data: bytes.NewReader(weights), Size: int64(len(weights))})
	require.NoError(t, err)
	sum := sha256.Sum256(weights)
	require.Equal(t, hex.EncodeToString(sum[:]), shard.Digest, "the record's digest is the sealed bytes'")

	for _, tc := range []struct {
		name string
		opts []supervisor.AcquireOption
	}{
		{"acquired", nil},
		{"acquired verified", []supervisor.AcquireOption{supervisor.Verified()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lease, err := rig.Acquire(ctx, shard, tc.opts...)
			require.NoError(t, err)
			defer lease.Release()
			ptr, err := lease.DevicePointer()
			require.NoError(t, err)
			require.NotZero(t, ptr)
			got := make([]byte, lease.Size())
			require.NoError(t, d.CopyFromPointer(got, ptr))
			sum := sha256.Sum256(got)
			assert.Equal(t, shard.Digest, hex.EncodeToString(sum[:]), "the bytes behind the lease's device pointer")
			t.Logf("%d bytes copied out through the device pointer of a lease %s: SHA-256 %x, the record's %s", len(got), tc.name, sum, shard.Digest)

			lease.Release()
			_, err = lease.DevicePointer()
			assert.ErrorIs(t, err, messages.ErrInvalidInput, "a released lease hands out no pointer")
		})
	}

	t.Run("revoked by an eviction", func(t *testing.T) {
		lease, err := rig.Acquire(ctx, shard)
		require.NoError(t, err)
		evicted := make(chan error, 1)
		go func() {
			_, err := rig.Evict(ctx, 0, "contention")
			evicted <- err
		}()
		select {
		case <-lease.Revoked():
		case <-time.After(30 * time.Second):
			t.Fatal("the eviction did not revoke the lease")
		}
		_, err = lease.DevicePointer()
		assert.ErrorIs(t, err, supervisor.ErrRevoked, "a revoked lease hands out no pointer")
		assert.ErrorIs(t, err, supervisor.ErrEvicted)
		lease.Release()
		select {
		case err := <-evicted:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Fatal("the eviction did not end once the lease was released")
		}
	})

	require.NoError(t, stop())
	assert.Zero(t, d.Outstanding(), "Stop and the eviction freed the shard")
}

// TestDriverOnDeviceSealsAndVerifiesAModelTheSizeOfTheDevice seals a shard
// as large as the fake libcuda's whole device through the embedding API and
// verifies it: the launch lanes give up their digest buffers to the shard,
// and Verify hashes on the host, counted in HashStats.
func TestDriverOnDeviceSealsAndVerifiesAModelTheSizeOfTheDevice(t *testing.T) {
	if os.Getenv("VRAMSEAL_FAKE_LIBCUDA") == "" {
		t.Skip("a GPU's context keeps some memory, so only the fake libcuda can be filled exactly")
	}
	d := driver.OpenTestDriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang, not a speed, bound
	defer cancel()
	rig, err := supervisor.MakeRig(ctx, supervisor.RigConfig{Config: supervisor.Config{Devices: []cuda.Device{d}, Backend: "cuda"}})
	require.NoError(t, err)
	defer func() { assert.NoError(t, rig.Stop(ctx)) }()

	weights := make([]byte, d.Properties().TotalMemory)
	_, _ = rand.Read(weights) // crypto/rand.Read never fails
	shard, err := rig.Seal(ctx, messages.SealRequest{ID: "whole-device", Data: bytes.NewReader(weights), Size: int64(len(weights))})
	require.NoError(t, err, "a model the size of the device seals")
	before := d.HashStats()
	require.NoError(t, rig.Verify(ctx, shard), "and verifies")
	assert.Greater(t, d.HashStats().HostFallbacks, before.HostFallbacks, "hashed on the host, for want of a digest buffer")
}
