package cudatest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
)

// testClose checks Close frees what is outstanding, is idempotent, and that
// every later call fails with ErrStopped while Properties still answers.
func testClose(t *testing.T, d cuda.Device) {
	props := d.Properties()
	handles := []cuda.Handle{allocate(t, d, 4<<10), allocate(t, d, 64<<10), allocate(t, d, 1)}
	require.NoError(t, d.Write(handles[0], 0, Pattern(5, 4<<10)))

	require.NoError(t, d.Close(), "first Close")
	if r, ok := d.(outstandingReporter); ok {
		assert.Zero(t, r.Outstanding(), "allocations outstanding after Close")
	}
	assert.NoError(t, d.Close(), "second Close")
	assert.Equal(t, props, d.Properties(), "properties after Close")

	_, _, err := d.MemInfo()
	assert.ErrorIs(t, err, messages.ErrStopped, "MemInfo")
	h, err := d.Allocate(4 << 10)
	assert.ErrorIs(t, err, messages.ErrStopped, "Allocate")
	assert.Zero(t, h, "Allocate handle")
	for _, h := range handles {
		assert.ErrorIs(t, d.Write(h, 0, []byte{1}), messages.ErrStopped, "Write")
		assert.ErrorIs(t, d.Read(h, 0, make([]byte, 1)), messages.ErrStopped, "Read")
		assert.ErrorIs(t, d.Free(h), messages.ErrStopped, "Free")
		if hs, ok := d.(cuda.ChunkHasher); ok {
			_, err := hs.HashChunks(h, 0, 1, 64<<10)
			assert.ErrorIs(t, err, messages.ErrStopped, "HashChunks")
		}
	}
}
