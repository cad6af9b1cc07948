package cudatest

import (
	"math"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
)

// copySize is an odd size a little over 2 MiB, so that copies straddle
// 64 KiB and 1 MiB boundaries and end off any power-of-two alignment.
const copySize = 2<<20 + 13

// testRoundTrip writes spans at awkward offsets and checks each reads back and
// that nothing outside the span changed.
func testRoundTrip(t *testing.T, d cuda.Device) {
	h := allocate(t, d, copySize)
	model := Pattern(1, copySize)
	require.NoError(t, d.Write(h, 0, model), "writing the whole allocation")
	require.Equal(t, model, readAll(t, d, h, copySize), "whole allocation after the first write")

	for i, tc := range []struct {
		name   string
		offset int64
		length int64
	}{
		{"first byte", 0, 1},
		{"straddles 64 KiB", 64<<10 - 7, 14},
		{"straddles 1 MiB", 1<<20 - 4096, 8192},
		{"straddles 2 MiB", 2<<20 - 1, 3},
		{"last byte", copySize - 1, 1},
		{"tail", copySize - 100, 100},
		{"whole allocation", 0, copySize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			span := Pattern(uint64(100+i), tc.length)
			require.NoError(t, d.Write(h, tc.offset, span), "write")
			copy(model[tc.offset:], span)

			got := make([]byte, tc.length)
			require.NoError(t, d.Read(h, tc.offset, got), "read")
			assert.Equal(t, span, got, "span read back")
			assert.Equal(t, model, readAll(t, d, h, copySize), "whole allocation after the write")
		})
	}
	require.NoError(t, d.Free(h))
}

// testZeroLengthCopies checks empty copies anywhere within bounds, including
// at the very end, succeed and change nothing.
func testZeroLengthCopies(t *testing.T, d cuda.Device) {
	const size = 4 << 10
	h := allocate(t, d, size)
	want := Pattern(2, size)
	require.NoError(t, d.Write(h, 0, want))
	for _, offset := range []int64{0, size / 2, size} {
		assert.NoError(t, d.Write(h, offset, nil), "empty write at %d", offset)
		assert.NoError(t, d.Write(h, offset, []byte{}), "empty non-nil write at %d", offset)
		assert.NoError(t, d.Read(h, offset, nil), "empty read at %d", offset)
	}
	assert.Equal(t, want, readAll(t, d, h, size), "contents after empty copies")
	require.NoError(t, d.Free(h))
}

// testOutOfBoundsCopies checks copies that do not lie within the allocation,
// including ones whose end overflows int64, are refused and copy nothing.
func testOutOfBoundsCopies(t *testing.T, d cuda.Device) {
	const size = 4 << 10
	h := allocate(t, d, size)
	want := Pattern(3, size)
	require.NoError(t, d.Write(h, 0, want))

	for _, tc := range []struct {
		name   string
		offset int64
		length int
	}{
		{"negative offset", -1, 1},
		{"negative offset, empty", -1, 0},
		{"most negative offset", math.MinInt64, 1},
		{"offset past the end", size + 1, 0},
		{"starts at the end", size, 1},
		{"runs past the end", size - 1, 2},
		{"longer than the allocation", 0, size + 1},
		{"end overflows int64", math.MaxInt64 - 1, 2},
		{"largest offset", math.MaxInt64, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := d.Write(h, tc.offset, Pattern(4, int64(tc.length)))
			assert.ErrorIs(t, err, messages.ErrInvalidInput, "write")
			err = d.Read(h, tc.offset, make([]byte, tc.length))
			assert.ErrorIs(t, err, messages.ErrInvalidInput, "read")
		})
	}
	assert.Equal(t, want, readAll(t, d, h, size), "contents after refused copies")
	require.NoError(t, d.Free(h))
}

// testUnknownHandles checks handles the device never issued are refused.
func testUnknownHandles(t *testing.T, d cuda.Device) {
	h := allocate(t, d, 4<<10)
	for _, tc := range []struct {
		name   string
		handle cuda.Handle
	}{
		{"zero handle", 0},
		{"largest handle", math.MaxUint64},
		{"neighbour of a live handle", h + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertRefusesHandle(t, d, tc.handle)
		})
	}
	assert.NoError(t, d.Free(h), "the live allocation is untouched")
}

// testFreedHandles checks a freed handle is refused for every use, including
// a second Free.
func testFreedHandles(t *testing.T, d cuda.Device) {
	h := allocate(t, d, 4<<10)
	require.NoError(t, d.Free(h))
	assertRefusesHandle(t, d, h)
}

// assertRefusesHandle checks every operation on h fails with ErrInvalidInput.
func assertRefusesHandle(t *testing.T, d cuda.Device, h cuda.Handle) {
	t.Helper()
	assert.ErrorIs(t, d.Write(h, 0, []byte{1}), messages.ErrInvalidInput, "write")
	assert.ErrorIs(t, d.Read(h, 0, make([]byte, 1)), messages.ErrInvalidInput, "read")
	assert.ErrorIs(t, d.Write(h, 0, nil), messages.ErrInvalidInput, "empty write")
	assert.ErrorIs(t, d.Free(h), messages.ErrInvalidInput, "free")
}

// testConcurrentCopies runs writers and readers on distinct allocations at
// once; each must see only its own bytes. Run it with -race.
func testConcurrentCopies(t *testing.T, d cuda.Device) {
	const (
		workers = 8
		rounds  = 16
		size    = 64 << 10
	)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			h, err := d.Allocate(size)
			if !assert.NoError(t, err, "worker %d allocate", w) {
				return
			}
			defer func() { assert.NoError(t, d.Free(h), "worker %d free", w) }()
			got := make([]byte, size)
			for r := range rounds {
				want := Pattern(uint64(w*rounds+r), size)
				if !assert.NoError(t, d.Write(h, 0, want), "worker %d round %d write", w, r) {
					return
				}
				if !assert.NoError(t, d.Read(h, 0, got), "worker %d round %d read", w, r) {
					return
				}
				if !assert.Equal(t, want, got, "worker %d round %d contents", w, r) {
					return
				}
			}
		})
	}
	wg.Wait()
}
