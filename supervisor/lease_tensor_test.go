package supervisor

import (
	"bytes"
	"context"
	"io"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
)

func TestLeaseLooksUpTensorsByName(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	table, file := safetensorsModel(t)
	ctx := context.Background()
	s, err := w.Seal(ctx, messages.SealRequest{ID: "m", Data: bytes.NewReader(file), Size: int64(len(file)), Tensors: table})
	require.NoError(t, err)
	lease, err := w.Acquire(ctx, s, Verified())
	require.NoError(t, err)
	defer lease.Release()
	view, err := lease.View()
	require.NoError(t, err)

	for _, want := range table {
		got, ok := lease.Tensor(want.Name)
		require.True(t, ok, want.Name)
		assert.Equal(t, want, got)
		bytesThere := make([]byte, got.Size)
		_, err := io.ReadFull(io.NewSectionReader(view, got.Offset, got.Size), bytesThere)
		require.NoError(t, err)
		assert.Equal(t, file[want.Offset:want.End()], bytesThere, "%s: the lease's memory at the tensor's offset holds its bytes", want.Name)
	}

	_, ok := lease.Tensor("model.no_such.weight")
	assert.False(t, ok)

	shape := slices.Clone(table[0].Shape)
	got, _ := lease.Tensor(table[0].Name)
	got.Shape[0]++
	again, _ := lease.Tensor(table[0].Name)
	assert.Equal(t, shape, again.Shape, "a caller changing a looked-up shape changes nothing in the lease")
}
