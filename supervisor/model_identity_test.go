package supervisor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda/cudatest"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// safetensorsModel makes a safetensors-shaped file whose tensors straddle
// the 64 KiB chunks of newTestWorker: "a" fills most of chunk 0, "b" spans
// the end of chunk 0 and the start of chunk 1, "c" lies inside chunk 1, "d"
// fills chunk 2 and runs into chunk 3. The runtime never parses the header
// (package model does), so its 248 bytes are random here.
func safetensorsModel(t *testing.T) ([]sealer.Tensor, []byte) {
	t.Helper()
	tensors := []sealer.Tensor{
		{Name: "model.embed_tokens.weight", DType: "F32", Shape: []uint64{15 * 1024}},             // 60 KiB
		{Name: "model.layers.0.self_attn.q_proj.weight", DType: "BF16", Shape: []uint64{8, 1024}}, // 16 KiB
		{Name: "model.layers.0.input_layernorm.weight", DType: "F16", Shape: []uint64{2048}},      // 4 KiB
		{Name: "model.layers.12.mlp.down_proj.weight", DType: "U8", Shape: []uint64{128, 1024}},   // 128 KiB
	}
	at := int64(8 + 248)
	for i := range tensors {
		n, err := sealer.TensorBytes(tensors[i].Name, tensors[i].DType, tensors[i].Shape)
		require.NoError(t, err)
		tensors[i].Offset, tensors[i].Size = at, int64(n)
		at += int64(n)
	}
	return tensors, cudatest.Pattern(7, at)
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestSealCarriesTensorTable(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	tensors, file := safetensorsModel(t)
	ctx := context.Background()
	s, err := w.Seal(ctx, messages.SealRequest{ID: "m", Data: bytes.NewReader(file), Size: int64(len(file)), Tensors: tensors})
	require.NoError(t, err)
	assert.Equal(t, tensors, s.Tensors)
	require.NoError(t, w.Verify(ctx, s))

	shards, err := w.Shards(ctx)
	require.NoError(t, err)
	require.Len(t, shards, 1)
	assert.Equal(t, tensors, shards[0].Tensors, "the status lists the table")

	swapped := s
	swapped.Tensors = append([]sealer.Tensor(nil), s.Tensors...)
	swapped.Tensors[0].Name, swapped.Tensors[1].Name = swapped.Tensors[1].Name, swapped.Tensors[0].Name
	require.ErrorIs(t, w.Verify(ctx, swapped), messages.ErrSealVerificationFailed, "a swapped table is tampering")
}

func TestSealRefusesABadTable(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	tensors, file := safetensorsModel(t)
	bad := append([]sealer.Tensor(nil), tensors...)
	bad[1].Offset++
	_, err := w.Seal(context.Background(), messages.SealRequest{ID: "m", Data: bytes.NewReader(file), Size: int64(len(file)), Tensors: bad})
	require.ErrorIs(t, err, messages.ErrInvalidInput)
	assertNothingHeld(t, w)
	assert.Empty(t, w.events(audit.EventVramAllocated))
}

func TestBitFlipNamesOverlappingTensors(t *testing.T) {
	tensors, file := safetensorsModel(t)
	start := tensors[0].Offset
	for _, tc := range []struct {
		name   string
		offset int64 // in the file
		want   []string
	}{
		{"inside c (chunk 1)", start + 60*1024 + 16*1024 + 100, []string{"model.layers.0.self_attn.q_proj.weight", "model.layers.0.input_layernorm.weight", "model.layers.12.mlp.down_proj.weight"}},
		{"inside d (chunk 2)", 2*64*1024 + 10, []string{"model.layers.12.mlp.down_proj.weight"}},
		{"in the header (chunk 0)", 3, []string{"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newTestWorker(t, []int64{10 * MiB}, nil)
			ctx := context.Background()
			s, err := w.Seal(ctx, messages.SealRequest{ID: "m", Data: bytes.NewReader(file), Size: int64(len(file)), Tensors: tensors})
			require.NoError(t, err)
			require.NoError(t, w.sims[0].FlipBit(w.sims[0].Allocations()[0].Handle, tc.offset, 5))

			err = w.Verify(ctx, s)
			require.ErrorIs(t, err, messages.ErrSealVerificationFailed)
			for _, x := range tensors {
				if slices.Contains(tc.want, x.Name) {
					assert.Contains(t, err.Error(), `"`+x.Name+`"`)
				} else {
					assert.NotContains(t, err.Error(), `"`+x.Name+`"`)
				}
			}
			w.waitStopped(t)
			failed := w.events(audit.EventSealVerificationFailed)
			require.Len(t, failed, 1)
			assert.Equal(t, tc.want, failed[0].Fields["tensors"])
			assert.Contains(t, failed[0].Fields["error"], tc.want[0])
		})
	}
}

// stubCheck is a seal check that refuses with err, or accepts when err is
// nil, after seeing every byte of the seal (model's Matcher is the real one).
type stubCheck struct {
	err  error
	seen int64
}

func (c *stubCheck) Write(p []byte) (int, error) { c.seen += int64(len(p)); return len(p), nil }

func (c *stubCheck) Result(string) error { return c.err }

func TestSealChecksPublishedDigest(t *testing.T) {
	data := cudatest.Pattern(3, 200*KiB+5) // four chunks, the last short
	ctx := context.Background()

	t.Run("match", func(t *testing.T) {
		w := newTestWorker(t, []int64{10 * MiB}, nil)
		check := &stubCheck{}
		_, err := w.Seal(ctx, messages.SealRequest{ID: "m", Data: bytes.NewReader(data), Size: int64(len(data)), Check: check})
		require.NoError(t, err)
		assert.Equal(t, int64(len(data)), check.seen, "the check sees every byte sealed")
		assert.Len(t, w.events(audit.EventVramSealed), 1)
		assert.Empty(t, w.events(audit.EventModelRejected))
	})
	t.Run("mismatch", func(t *testing.T) {
		w := newTestWorker(t, []int64{10 * MiB}, nil)
		wrong := hexSHA256([]byte("another model"))
		check := &stubCheck{err: &messages.RejectedError{File: "m.safetensors", Source: "sums line 1", Expected: wrong, Actual: hexSHA256(data)}}
		_, err := w.Seal(ctx, messages.SealRequest{ID: "m", Data: bytes.NewReader(data), Size: int64(len(data)), Check: check})
		require.ErrorIs(t, err, messages.ErrModelRejected)
		assert.False(t, messages.IsFatal(err))
		assert.Contains(t, err.Error(), "m.safetensors")
		assertNothingHeld(t, w)
		assert.Empty(t, w.events(audit.EventVramSealed))
		assert.Empty(t, w.events(audit.EventVramAllocationFailed))
		rej := w.events(audit.EventModelRejected)
		require.Len(t, rej, 1)
		assert.Equal(t, audit.SeverityCritical, rej[0].Severity)
		assert.Equal(t, "m.safetensors", rej[0].Fields["file"])
		assert.Equal(t, wrong, rej[0].Fields["expected"])
		assert.Equal(t, hexSHA256(data), rej[0].Fields["actual"])
		assert.Equal(t, "sums line 1", rej[0].Fields["source"])
		w.seal(t, 0, "m", 64*KiB) // the worker goes on; the ID is free again
	})
}

func TestSealRejectsARangeOfTheModel(t *testing.T) {
	data := cudatest.Pattern(4, 300*KiB)
	ctx := context.Background()
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	_, err := w.Seal(ctx, messages.SealRequest{ID: "ok", Data: bytes.NewReader(data), Size: int64(len(data)), Check: &stubCheck{}})
	require.NoError(t, err)

	rejected := &messages.RejectedError{File: "m.safetensors", Source: "signature model.sig", Expected: hexSHA256([]byte("x")), Actual: hexSHA256([]byte("y")), Start: 100 * KiB, End: 200 * KiB}
	_, err = w.Seal(ctx, messages.SealRequest{ID: "bad", Data: bytes.NewReader(data), Size: int64(len(data)), Check: &stubCheck{err: rejected}})
	require.ErrorIs(t, err, messages.ErrModelRejected)
	assert.Contains(t, err.Error(), "bytes [102400, 204800)")
	rej := w.events(audit.EventModelRejected)
	require.Len(t, rej, 1)
	assert.Equal(t, 100*KiB, rej[0].Fields["offset"])
	assert.Equal(t, 100*KiB, rej[0].Fields["length"])
	assert.Equal(t, "signature model.sig", rej[0].Fields["source"])
	shards, err := w.Shards(ctx)
	require.NoError(t, err)
	require.Len(t, shards, 1, "only the good seal holds memory")
	assert.Len(t, w.sims[0].Allocations(), 1)

	require.NoError(t, w.RecordModelVerified(ctx, messages.ModelVerified{
		KeyFingerprint: "ab12", Subject: "m", SubjectDigest: hexSHA256(data), Method: "shards", Source: "model.sig", Files: 1,
	}))
	ver := w.events(audit.EventModelVerified)
	require.Len(t, ver, 1)
	assert.Equal(t, "ab12", ver[0].Fields["key_fingerprint"])
	assert.Equal(t, "shards", ver[0].Fields["method"])
}
