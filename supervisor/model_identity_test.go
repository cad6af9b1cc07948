package supervisor

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/internal/modelsigtest"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// safetensorsModel makes a safetensors file whose tensors straddle the
// 64 KiB chunks of newTestWorker: "a" fills most of chunk 0, "b" spans the
// end of chunk 0 and the start of chunk 1, "c" lies inside chunk 1, "d"
// fills chunk 2 and runs into chunk 3.
func safetensorsModel(t *testing.T) (*sealer.TensorTable, []byte) {
	t.Helper()
	table, err := sealer.LayoutSafetensors(map[string]string{"format": "pt"}, []sealer.Tensor{
		{Name: "model.embed_tokens.weight", DType: "F32", Shape: []uint64{15 * 1024}},             // 60 KiB
		{Name: "model.layers.0.self_attn.q_proj.weight", DType: "BF16", Shape: []uint64{8, 1024}}, // 16 KiB
		{Name: "model.layers.0.input_layernorm.weight", DType: "F16", Shape: []uint64{2048}},      // 4 KiB
		{Name: "model.layers.12.mlp.down_proj.weight", DType: "U8", Shape: []uint64{128, 1024}},   // 128 KiB
	})
	require.NoError(t, err)
	header, err := table.Header()
	require.NoError(t, err)
	return table, append(header, randomData(7, table.DataSize())...)
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestSealCarriesTensorTable(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	table, file := safetensorsModel(t)
	ctx := context.Background()
	s, err := w.Seal(ctx, messages.SealRequest{ID: "m", Data: bytes.NewReader(file), Size: int64(len(file)), Tensors: table.Tensors})
	require.NoError(t, err)
	assert.Equal(t, table.Tensors, s.Tensors)
	require.NoError(t, w.Verify(ctx, s))

	shards, err := w.Shards(ctx)
	require.NoError(t, err)
	require.Len(t, shards, 1)
	assert.Equal(t, table.Tensors, shards[0].Tensors, "the status lists the table")

	swapped := s
	swapped.Tensors = append([]sealer.Tensor(nil), s.Tensors...)
	swapped.Tensors[0].Name, swapped.Tensors[1].Name = swapped.Tensors[1].Name, swapped.Tensors[0].Name
	require.ErrorIs(t, w.Verify(ctx, swapped), messages.ErrSealVerificationFailed, "a swapped table is tampering")
}

func TestSealRefusesABadTable(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	table, file := safetensorsModel(t)
	bad := append([]sealer.Tensor(nil), table.Tensors...)
	bad[1].Offset++
	_, err := w.Seal(context.Background(), messages.SealRequest{ID: "m", Data: bytes.NewReader(file), Size: int64(len(file)), Tensors: bad})
	require.ErrorIs(t, err, messages.ErrInvalidInput)
	assertNothingHeld(t, w)
	assert.Empty(t, w.events(audit.EventVramAllocated))
}

func TestBitFlipNamesOverlappingTensors(t *testing.T) {
	table, file := safetensorsModel(t)
	start := table.DataStart()
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
			s, err := w.Seal(ctx, messages.SealRequest{ID: "m", Data: bytes.NewReader(file), Size: int64(len(file)), Tensors: table.Tensors})
			require.NoError(t, err)
			require.NoError(t, w.sims[0].FlipBit(w.sims[0].Allocations()[0].Handle, tc.offset, 5))

			err = w.Verify(ctx, s)
			require.ErrorIs(t, err, messages.ErrSealVerificationFailed)
			for _, x := range table.Tensors {
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

// checkFor is a Matcher over exps for data.
func checkFor(t *testing.T, data []byte, exps ...sealer.Expectation) *sealer.Matcher {
	t.Helper()
	m, err := sealer.NewMatcher(exps, int64(len(data)))
	require.NoError(t, err)
	return m
}

func TestSealChecksPublishedDigest(t *testing.T) {
	data := randomData(3, 200*KiB+5) // four chunks, the last short
	ctx := context.Background()

	t.Run("match", func(t *testing.T) {
		w := newTestWorker(t, []int64{10 * MiB}, nil)
		check := checkFor(t, data, sealer.Expectation{Name: "m.safetensors", Source: "sums line 1", SHA256: hexSHA256(data)})
		_, err := w.Seal(ctx, messages.SealRequest{ID: "m", Data: bytes.NewReader(data), Size: int64(len(data)), Check: check})
		require.NoError(t, err)
		assert.Len(t, w.events(audit.EventVramSealed), 1)
		assert.Empty(t, w.events(audit.EventModelRejected))
	})
	t.Run("mismatch", func(t *testing.T) {
		w := newTestWorker(t, []int64{10 * MiB}, nil)
		wrong := hexSHA256([]byte("another model"))
		check := checkFor(t, data, sealer.Expectation{Name: "m.safetensors", Source: "sums line 1", SHA256: wrong})
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

func TestSealChecksSignedShards(t *testing.T) {
	data := randomData(4, 300*KiB)
	key := modelsigtest.NewKey(elliptic.P384())
	model := modelsigtest.Model{Name: "m", Method: sealer.MethodShards, ShardSize: 100 * KiB, Files: map[string][]byte{"m.safetensors": data}}
	pub, err := sealer.ParsePublicKey(modelsigtest.PublicPEM(key))
	require.NoError(t, err)
	manifest, err := sealer.VerifyModelSignature(modelsigtest.Sign(key, model), pub, "model.sig")
	require.NoError(t, err)
	e, ok := manifest.Lookup("m.safetensors")
	require.True(t, ok)
	ctx := context.Background()

	w := newTestWorker(t, []int64{10 * MiB}, nil)
	_, err = w.Seal(ctx, messages.SealRequest{ID: "ok", Data: bytes.NewReader(data), Size: int64(len(data)), Check: checkFor(t, data, e)})
	require.NoError(t, err)

	bad := bytes.Clone(data)
	bad[150*KiB] ^= 0x10
	_, err = w.Seal(ctx, messages.SealRequest{ID: "bad", Data: bytes.NewReader(bad), Size: int64(len(bad)), Check: checkFor(t, data, e)})
	require.ErrorIs(t, err, messages.ErrModelRejected)
	assert.Contains(t, err.Error(), "bytes [102400, 204800)")
	rej := w.events(audit.EventModelRejected)
	require.Len(t, rej, 1)
	assert.Equal(t, 100*KiB, rej[0].Fields["offset"])
	assert.Equal(t, "signature model.sig", rej[0].Fields["source"])
	shards, err := w.Shards(ctx)
	require.NoError(t, err)
	require.Len(t, shards, 1, "only the good seal holds memory")
	assert.Len(t, w.sims[0].Allocations(), 1)

	require.NoError(t, w.RecordModelVerified(ctx, messages.ModelVerified{
		KeyFingerprint: manifest.KeyFingerprint, Subject: manifest.Subject, SubjectDigest: manifest.SubjectDigest,
		Method: manifest.Method, Source: "model.sig", Files: 1,
	}))
	ver := w.events(audit.EventModelVerified)
	require.Len(t, ver, 1)
	assert.Equal(t, manifest.KeyFingerprint, ver[0].Fields["key_fingerprint"])
	assert.Equal(t, "shards", ver[0].Fields["method"])
}
