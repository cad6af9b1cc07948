package supervisor

import (
	"bytes"
	"context"
	"io"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/safetensors"
	"github.com/vramseal/vramseal/sealer"
)

// safetensorsFile is a safetensors file of the given tensors, its data
// bytes all fill.
func safetensorsFile(t *testing.T, fill byte, tensors ...sealer.Tensor) ([]byte, *safetensors.TensorTable) {
	t.Helper()
	table, err := safetensors.LayoutSafetensors(nil, tensors)
	require.NoError(t, err)
	header, err := table.Header()
	require.NoError(t, err)
	return append(header, bytes.Repeat([]byte{fill}, int(table.DataSize()))...), table
}

// rewrittenOnceHeaderIsRead reads as first until the whole header (up to
// dataStart) has been read once, then as second: a file rewritten between
// the header check and the seal's stream.
type rewrittenOnceHeaderIsRead struct {
	first, second []byte
	dataStart     int64
	rewritten     atomic.Bool
}

func (r *rewrittenOnceHeaderIsRead) ReadAt(p []byte, off int64) (int, error) {
	b := r.first
	if r.rewritten.Load() {
		b = r.second
	}
	if off+int64(len(p)) >= r.dataStart {
		r.rewritten.Store(true)
	}
	return bytes.NewReader(b).ReadAt(p, off)
}

func TestSafetensorsRequestSealsTheHeaderItChecked(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	ctx := context.Background()
	first, table := safetensorsFile(t, 1, sealer.Tensor{Name: "w", DType: "U8", Shape: []uint64{64 << 10}})
	second, _ := safetensorsFile(t, 1, sealer.Tensor{Name: "v", DType: "U8", Shape: []uint64{64 << 10}})
	require.Equal(t, len(first), len(second))

	req, err := SafetensorsRequest("m", &rewrittenOnceHeaderIsRead{first: first, second: second, dataStart: table.DataStart()}, int64(len(first)))
	require.NoError(t, err)
	assert.Equal(t, table.Tensors, req.Tensors)
	s, err := w.Seal(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, hexSHA256(first), s.Digest, "the header sealed is the one checked, not the rewritten one")
	lease, err := w.Acquire(ctx, s, Verified())
	require.NoError(t, err)
	defer lease.Release()
	got, ok := lease.Tensor("w")
	require.True(t, ok)
	view, err := lease.View()
	require.NoError(t, err)
	data, err := io.ReadAll(io.NewSectionReader(view, got.Offset, got.Size))
	require.NoError(t, err)
	assert.Equal(t, bytes.Repeat([]byte{1}, 64<<10), data)
}

func TestSafetensorsRequestRefusesABrokenHeader(t *testing.T) {
	file, _ := safetensorsFile(t, 0, sealer.Tensor{Name: "w", DType: "U8", Shape: []uint64{16}})
	broken := bytes.Replace(bytes.Clone(file), []byte(`"U8"`), []byte(`"XX"`), 1)
	_, err := SafetensorsRequest("m", bytes.NewReader(broken), int64(len(broken)))
	assert.ErrorIs(t, err, ErrInvalidInput)
	var he *sealer.HeaderError
	assert.ErrorAs(t, err, &he, "the error names the rule broken")
	_, err = SafetensorsRequest("m", bytes.NewReader(file), int64(len(file))+1)
	assert.ErrorIs(t, err, ErrInvalidInput, "a size that does not match the header")
}
