package supervisor

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

func TestAnEmbedderChangingItsTensorTablesAltersNoSealedRecord(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	table, file := safetensorsModel(t)
	ctx := context.Background()
	tensors := sealer.CloneTensors(table)
	s, err := w.Seal(ctx, messages.SealRequest{ID: "m", Data: bytes.NewReader(file), Size: int64(len(file)), Tensors: tensors})
	require.NoError(t, err)
	scribble := func(ts []sealer.Tensor) {
		ts[0].Name = "changed.by.the.embedder"
		ts[0].Shape[0]++
	}

	scribble(tensors) // the request's table, after Seal
	require.NoError(t, w.Verify(ctx, s), "the record Seal returned is the one sealed")
	assert.Equal(t, table, s.Tensors)

	status, err := w.Shards(ctx)
	require.NoError(t, err)
	require.Len(t, status, 1)
	scribble(status[0].Tensors) // the table a status call handed out
	require.NoError(t, w.Verify(ctx, s), "the live record is the one sealed")
	status, err = w.Shards(ctx)
	require.NoError(t, err)
	assert.Equal(t, table, status[0].Tensors)

	scribble(s.Tensors) // the table of the record Seal returned
	again, err := w.Shards(ctx)
	require.NoError(t, err)
	assert.Equal(t, table, again[0].Tensors, "the live record is not the caller's")
	select {
	case <-w.Done():
		require.Fail(t, "the runtime stopped", "%v", w.Err())
	default:
	}
}
