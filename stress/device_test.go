package stress

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
)

// newTestDevice wraps a fresh 1 MiB Sim with the given fault rates.
func newTestDevice(t *testing.T, faults Faults) (*faultyDevice, faultTally) {
	t.Helper()
	sim, err := cuda.NewSim(cuda.SimConfig{Capacity: mib, Seed: 1})
	require.NoError(t, err)
	tally := newFaultTally()
	d := newFaultyDevice(sim, 0, faults, readRetries, 1, tally, nil)
	t.Cleanup(func() { d.Close() })
	return d, tally
}

func TestFaultyDeviceFailsAllocations(t *testing.T) {
	d, tally := newTestDevice(t, Faults{Alloc: 1})
	_, err := d.Allocate(kib)
	assert.ErrorIs(t, err, messages.ErrAllocationFailed)
	assert.Equal(t, int64(1), tally[FaultAlloc].injected.Load())

	d.faults.Alloc = 0
	_, err = d.Allocate(kib)
	assert.NoError(t, err, "the Sim's fault is disarmed after the call it was armed for")
}

func TestFaultyDeviceStopsCopiesPartWay(t *testing.T) {
	d, tally := newTestDevice(t, Faults{Copy: 1})
	h, err := d.Allocate(4 * kib)
	require.NoError(t, err)
	data := bytes.Repeat([]byte{0xab}, 4*int(kib))
	err = d.Write(h, 0, data)
	assert.ErrorIs(t, err, cuda.ErrCopyFailed)
	assert.Equal(t, int64(1), tally[FaultCopy].injected.Load())

	d.faults.Copy = 0
	require.NoError(t, d.Write(h, 0, data), "the Sim's fault is disarmed after the call it was armed for")
	got := make([]byte, len(data))
	require.NoError(t, d.Read(h, 0, got))
	assert.Equal(t, data, got)
}

// TestFaultyDeviceReadBurstsStayWithinRetries reads chunks the way the
// runtime retries them, with every read starting a burst if it may: no
// chunk fails more often than the runtime retries, each failure counts as
// detected once it is retried, and a chunk that had its burst reads cleanly.
func TestFaultyDeviceReadBurstsStayWithinRetries(t *testing.T) {
	d, tally := newTestDevice(t, Faults{Read: 1})
	h, err := d.Allocate(4 * kib)
	require.NoError(t, err)
	buf := make([]byte, kib)
	for _, off := range []int64{0, kib, 2 * kib, 3 * kib} {
		failures := 0
		for d.Read(h, off, buf) != nil {
			failures++
			require.LessOrEqual(t, failures, readRetries, "offset %d", off)
		}
		assert.Positive(t, failures, "offset %d", off)
		assert.NoError(t, d.Read(h, off, buf), "offset %d had its burst", off)
	}
	c := tally[FaultRead]
	assert.Positive(t, c.injected.Load())
	assert.Equal(t, c.injected.Load(), c.detected.Load())
}

func TestFaultyDeviceCountsUnretriedReadsOnFree(t *testing.T) {
	d, tally := newTestDevice(t, Faults{Read: 1})
	h, err := d.Allocate(kib)
	require.NoError(t, err)
	require.Error(t, d.Read(h, 0, make([]byte, kib)))
	assert.Zero(t, tally[FaultRead].detected.Load())

	require.NoError(t, d.Free(h))
	assert.Equal(t, int64(1), tally[FaultRead].detected.Load(), "a freed shard's failed read needs no retry")
}

func TestFaultyDeviceFlipsTheNamedShard(t *testing.T) {
	d, _ := newTestDevice(t, Faults{})
	h, err := d.Allocate(4 * kib)
	require.NoError(t, err)
	data := make([]byte, 4*kib)
	copy(data, "shard-a\x00")
	require.NoError(t, d.Write(h, 0, data))

	require.NoError(t, d.flip("shard-a", 100, 3))
	got := make([]byte, len(data))
	require.NoError(t, d.Read(h, 0, got))
	want := bytes.Clone(data)
	want[100] ^= 1 << 3
	assert.Equal(t, want, got)

	assert.Error(t, d.flip("shard-b", 0, 0), "no such shard")
	require.NoError(t, d.Free(h))
	assert.Error(t, d.flip("shard-a", 0, 0), "freed")
}

func TestShardIDFromHeader(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"header", []byte("g1-c2-s3\x00rest"), "g1-c2-s3"},
		{"no terminator", bytes.Repeat([]byte("a"), maxHeaderLen+1), ""},
		{"empty id", []byte("\x00abc"), ""},
		{"short write", []byte("ab"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, shardIDFromHeader(tt.in))
		})
	}
}
