package sealer

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShardChunks(t *testing.T) {
	tests := []struct {
		size, chunk, want int64
	}{
		{1, MinChunkSize, 1},
		{MinChunkSize, MinChunkSize, 1},
		{MinChunkSize + 1, MinChunkSize, 2},
		{10 * MinChunkSize, MinChunkSize, 10},
		{math.MaxInt64, MaxChunkSize, math.MaxInt64/MaxChunkSize + 1},
		{0, MinChunkSize, 0},
		{-1, MinChunkSize, 0},
		{100, 0, 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Shard{Size: tt.size, ChunkSize: tt.chunk}.Chunks(), "size %d chunk %d", tt.size, tt.chunk)
	}
}

func TestShardEqual(t *testing.T) {
	k := mustKey(t, testToken, "w1")
	a := validShard(t)
	b := a
	b.SealedAt = a.SealedAt.In(time.FixedZone("X", -7200))
	assert.True(t, a.Equal(b), "same instant in another zone")

	require.NoError(t, Sign(k, &a))
	assert.False(t, a.Equal(b), "signed and unsigned differ")
	b = a
	assert.True(t, a.Equal(b))
	other := a
	require.NoError(t, Sign(mustKey(t, testToken, "w2"), &other))
	assert.False(t, a.Equal(other), "same fields, other signature")

	changes := map[string]func(*Shard){
		"ID": func(s *Shard) { s.ID += "x" }, "Device": func(s *Shard) { s.Device++ },
		"Size": func(s *Shard) { s.Size++ }, "Digest": func(s *Shard) { s.Digest = s.ChunkRoot },
		"ChunkSize": func(s *Shard) { s.ChunkSize *= 2 }, "ChunkRoot": func(s *Shard) { s.ChunkRoot = s.Digest },
		"SealedAt": func(s *Shard) { s.SealedAt = s.SealedAt.Add(time.Nanosecond) },
		"ModelRef": func(s *Shard) { s.ModelRef += "x" }, "ShardIndex": func(s *Shard) { s.ShardIndex++ },
		"TotalShards": func(s *Shard) { s.TotalShards++ }, "Generation": func(s *Shard) { s.Generation++ },
		"Tensors": func(s *Shard) {
			s.Tensors = []Tensor{{Name: "w", DType: "U8", Shape: []uint64{1}, Offset: 8, Size: 1}}
		},
	}
	require.Len(t, changes, reflect.TypeFor[Shard]().NumField()-1, "every exported field is covered")
	for name, change := range changes {
		c := a
		change(&c)
		assert.False(t, a.Equal(c), name)
	}
}

// TestShardHoldsNoAddress checks the type itself: no field that could carry a
// device pointer, and the fields are the documented record.
func TestShardHoldsNoAddress(t *testing.T) {
	typ := reflect.TypeFor[Shard]()
	var names []string
	for f := range typ.Fields() {
		names = append(names, f.Name)
		switch f.Type.Kind() {
		case reflect.Uintptr, reflect.Pointer, reflect.UnsafePointer, reflect.Interface, reflect.Map, reflect.Func, reflect.Chan:
			t.Errorf("field %s is a %s, which could carry an address", f.Name, f.Type)
		}
		assert.NotContains(t, strings.ToLower(f.Name), "addr")
		assert.NotContains(t, strings.ToLower(f.Name), "ptr")
	}
	assert.Equal(t, []string{"ID", "Device", "Size", "Digest", "ChunkSize", "ChunkRoot", "SealedAt",
		"ModelRef", "ShardIndex", "TotalShards", "Tensors", "Generation", "signature"}, names)
}

func TestShardPrintedForms(t *testing.T) {
	k := mustKey(t, testToken, "w1")
	s := validShard(t)
	s.SealedAt = time.Now() // carries a monotonic reading and a local zone
	require.NoError(t, Sign(k, &s))
	js, err := json.Marshal(s)
	require.NoError(t, err)

	forms := map[string]string{
		"%v": fmt.Sprintf("%v", s), "%+v": fmt.Sprintf("%+v", s), "%#v": fmt.Sprintf("%#v", s),
		//lint:ignore S1025 the test checks what the %s verb prints
		"%v of *Shard": fmt.Sprintf("%v", &s), "%s": fmt.Sprintf("%s", s), "JSON": string(js),
	}
	for name, out := range forms {
		assert.NotContains(t, out, "0x", "%s shows an address", name)
		assert.NotContains(t, out, "m=+", "%s shows a monotonic clock reading", name)
		for _, f := range secretForms(testKeyBytes(t, testToken, "w1")) {
			assert.NotContains(t, out, f, "%s shows the key", name)
		}
		assert.Contains(t, out, s.ID, name)
		assert.Contains(t, out, s.Digest, name)
	}
	assert.Equal(t, forms["%v"], forms["%+v"])
	assert.Contains(t, forms["%v"], "signed}")
	assert.Contains(t, forms["%v"], "shard:0/4")
	assert.Contains(t, forms["%#v"], `sealer.Shard{ID:"llama-7b.shard-00", Device:1, `)
	assert.Contains(t, forms["%#v"], "/* signed */")
	assert.NotContains(t, forms["%#v"], hex.EncodeToString(s.signature), "%#v need not show the signature")
	assert.Contains(t, forms["JSON"], hex.EncodeToString(s.signature), "JSON carries the signature")

	s.signature = nil
	assert.Contains(t, s.String(), "unsigned}")
	s.ID = "evil\n\x1b[31m"
	assert.Contains(t, s.String(), `"evil\n\x1b[31m"`, "control characters are escaped")
}
