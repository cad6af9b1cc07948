package sealer

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
)

// tensorShard is a valid record of a safetensors shard.
func tensorShard(t *testing.T) Shard {
	t.Helper()
	tensors, size := placeTensors(t, 64, []Tensor{
		{Name: "model.embed_tokens.weight", DType: "BF16", Shape: []uint64{4, 8}},
		{Name: "model.layers.0.mlp.down_proj.weight", DType: "F32", Shape: []uint64{8}},
	})
	s := validShard(t)
	s.Size = size
	s.Tensors = tensors
	return s
}

// placeTensors lays tensors out one after another behind a header of
// headerLen bytes (and its 8-byte length), as a safetensors file would, and
// returns them with the file's size.
func placeTensors(t *testing.T, headerLen int64, tensors []Tensor) ([]Tensor, int64) {
	t.Helper()
	at := 8 + headerLen
	for i := range tensors {
		n, err := TensorBytes(tensors[i].Name, tensors[i].DType, tensors[i].Shape)
		require.NoError(t, err)
		tensors[i].Offset, tensors[i].Size = at, int64(n)
		at += int64(n)
	}
	return tensors, at
}

func TestSignCoversTensorTable(t *testing.T) {
	k := mustKey(t, testToken, "w1")
	signed := tensorShard(t)
	require.NoError(t, Sign(k, &signed))
	require.NoError(t, CheckSignature(k, &signed))

	check := func(what string, change func([]Tensor) []Tensor) {
		s := signed
		s.Tensors = change(CloneTensors(signed.Tensors))
		requireRejected(t, CheckSignature(k, &s), what)
	}
	for i := range signed.Tensors {
		x := signed.Tensors[i]
		for j := range len(x.Name) {
			for b := range 8 {
				check("name byte "+strconv.Itoa(j)+" bit "+strconv.Itoa(b), func(ts []Tensor) []Tensor {
					ts[i].Name = flipString(ts[i].Name, j, b)
					return ts
				})
			}
		}
		check("dtype", func(ts []Tensor) []Tensor { ts[i].DType = "F16"; return ts })
		check("shape", func(ts []Tensor) []Tensor { ts[i].Shape[0] ^= 1; return ts })
		check("reshaped", func(ts []Tensor) []Tensor {
			ts[i].Shape = []uint64{ts[i].Shape[0] * 2, ts[i].Shape[len(ts[i].Shape)-1] / 2}
			return ts
		})
		for b := range 63 {
			check("offset bit "+strconv.Itoa(b), func(ts []Tensor) []Tensor { ts[i].Offset ^= 1 << b; return ts })
			check("size bit "+strconv.Itoa(b), func(ts []Tensor) []Tensor { ts[i].Size ^= 1 << b; return ts })
		}
	}
	check("swapped names", func(ts []Tensor) []Tensor { ts[0].Name, ts[1].Name = ts[1].Name, ts[0].Name; return ts })
	check("dropped", func(ts []Tensor) []Tensor { return nil })
}

func TestShardJSONCarriesTensors(t *testing.T) {
	k := mustKey(t, testToken, "w1")
	s := tensorShard(t)
	require.NoError(t, Sign(k, &s))
	js, err := json.Marshal(s)
	require.NoError(t, err)
	var back Shard
	require.NoError(t, json.Unmarshal(js, &back))
	assert.True(t, s.Equal(back))
	assert.Equal(t, s.Tensors, back.Tensors)
	require.NoError(t, CheckSignature(k, &back))
	assert.Contains(t, s.String(), "tensors:2@")

	for name, edit := range map[string]func(map[string]any){
		"empty table":     func(m map[string]any) { m["tensors"] = []any{} },
		"unknown field":   func(m map[string]any) { m["tensors"].([]any)[0].(map[string]any)["x"] = 1 },
		"not an array":    func(m map[string]any) { m["tensors"] = "x" },
		"tiles wrongly":   func(m map[string]any) { m["tensors"].([]any)[1].(map[string]any)["offset"] = 1 },
		"not to the end":  func(m map[string]any) { m["size"] = s.Size + 1 },
		"unknown dtype":   func(m map[string]any) { m["tensors"].([]any)[0].(map[string]any)["dtype"] = "X" },
		"duplicate names": func(m map[string]any) { m["tensors"].([]any)[1].(map[string]any)["name"] = s.Tensors[0].Name },
	} {
		var m map[string]any
		require.NoError(t, json.Unmarshal(js, &m))
		delete(m, "signature") // a signed record's form is its signature check's (TestShardJSONLeavesASignedRecordsFormToItsCheck)
		edit(m)
		out, err := json.Marshal(m)
		require.NoError(t, err)
		var r Shard
		assert.ErrorIs(t, json.Unmarshal(out, &r), messages.ErrInvalidInput, name)
	}
}
