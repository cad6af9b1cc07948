package model

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/untrusted"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// stFile makes a safetensors file from a raw JSON header and dataLen bytes
// of data.
func stFile(header string, dataLen int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, dataLen)...)
}

func readTable(t *testing.T, file []byte) (*TensorTable, error) {
	t.Helper()
	return ReadSafetensorsHeader(bytes.NewReader(file), int64(len(file)))
}

func requireRule(t *testing.T, err error, tensor string, rule sealer.HeaderRule) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, messages.ErrInvalidInput)
	var he *sealer.HeaderError
	require.True(t, errors.As(err, &he), "%v", err)
	assert.Equal(t, rule, he.Rule, "%v", err)
	assert.Equal(t, tensor, he.Tensor, "%v", err)
	assert.Contains(t, err.Error(), string(rule))
	if tensor != "" {
		assert.Contains(t, err.Error(), tensor)
	}
	require.NoError(t, untrusted.CheckPlain(err.Error()))
}

func TestSafetensorsHeaderRules(t *testing.T) {
	huge := binary.LittleEndian.AppendUint64(nil, MaxSafetensorsHeader+1)
	huge = append(huge, make([]byte, 64)...)
	pastEnd := binary.LittleEndian.AppendUint64(nil, 100)
	pastEnd = append(pastEnd, `{}`...)
	tests := []struct {
		name   string
		file   []byte
		tensor string
		rule   sealer.HeaderRule
	}{
		{"huge length", huge, "", sealer.RuleLength},
		{"length past the end", pastEnd, "", sealer.RuleLength},
		{"shorter than the length field", []byte{1, 2, 3}, "", sealer.RuleTruncated},
		{"not an object", stFile(`[1,2]   `, 0), "", sealer.RuleObject},
		{"lone surrogate escape", stFile(`{"\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 1), "", sealer.RuleObject},
		{"nested past the reference's depth", stFile(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":`+strings.Repeat("[", 126)+strings.Repeat("]", 126)+`}}`, 1), "", sealer.RuleObject},
		{"number out of range", stFile(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1e400}}`, 1), "w", sealer.RuleObject},
		{"not JSON", stFile(`{"a":`, 0), "a", sealer.RuleObject},
		{"padding other than JSON whitespace", stFile("{}\x00", 0), "", sealer.RuleObject},
		{"trailing garbage in the header", stFile(`{} {}`, 0), "", sealer.RuleObject},
		{"duplicate tensor", stFile(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, 2), "w", sealer.RuleDuplicate},
		{"duplicate tensor by escape", stFile(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"\u0077":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, 2), "w", sealer.RuleDuplicate},
		{"duplicate field", stFile(`{"w":{"dtype":"U8","dtype":"F32","shape":[1],"data_offsets":[0,1]}}`, 1), "w", sealer.RuleDuplicate},
		{"duplicate metadata", stFile(`{"__metadata__":{"a":"1"},"__metadata__":{"a":"2"}}`, 0), "__metadata__", sealer.RuleDuplicate},
		{"duplicate metadata key", stFile(`{"__metadata__":{"a":"1","a":"2"}}`, 0), "__metadata__", sealer.RuleDuplicate},
		{"unknown dtype", stFile(`{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`, 16), "w", sealer.RuleDType},
		{"dtype not a string", stFile(`{"w":{"dtype":8,"shape":[1],"data_offsets":[0,1]}}`, 1), "w", sealer.RuleDType},
		{"overflowing shape product", stFile(`{"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, 0), "w", sealer.RuleSize},
		{"overflowing bytes", stFile(`{"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}}`, 0), "w", sealer.RuleSize},
		{"size not matching shape", stFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4), "w", sealer.RuleSize},
		{"negative dimension", stFile(`{"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}`, 0), "w", sealer.RuleShape},
		{"fractional dimension", stFile(`{"w":{"dtype":"U8","shape":[1.5],"data_offsets":[0,0]}}`, 0), "w", sealer.RuleShape},
		{"shape not an array", stFile(`{"w":{"dtype":"U8","shape":1,"data_offsets":[0,1]}}`, 1), "w", sealer.RuleShape},
		{"three offsets", stFile(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}`, 1), "w", sealer.RuleOffsets},
		{"offsets reversed", stFile(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[1,0]}}`, 1), "w", sealer.RuleOffsets},
		{"missing dtype", stFile(`{"w":{"shape":[1],"data_offsets":[0,1]}}`, 1), "w", sealer.RuleFields},
		{"missing shape", stFile(`{"w":{"dtype":"U8","data_offsets":[0,1]}}`, 1), "w", sealer.RuleFields},
		{"missing offsets", stFile(`{"w":{"dtype":"U8","shape":[1]}}`, 1), "w", sealer.RuleFields},
		{"tensor array too long", stFile(`{"w":["U8",[1],[0,1],1]}`, 1), "w", sealer.RuleFields},
		{"dtype object not null", stFile(`{"w":{"dtype":{"U8":1},"shape":[1],"data_offsets":[0,1]}}`, 1), "w", sealer.RuleDType},
		{"empty name", stFile(`{"":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 1), "", sealer.RuleTensorName},
		{"overlap", stFile(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}`, 6), "b", sealer.RuleOverlap},
		{"same range twice", stFile(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}`, 4), "b", sealer.RuleOverlap},
		{"gap", stFile(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[5,9]}}`, 9), "b", sealer.RuleGap},
		{"first not at 0", stFile(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[1,5]}}`, 5), "a", sealer.RuleGap},
		{"trailing bytes", stFile(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}`, 5), "", sealer.RuleFileSize},
		{"data cut short", stFile(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}`, 3), "", sealer.RuleFileSize},
		{"invalid UTF-8", stFile("{\"a\xff\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1), "", sealer.RuleUTF8},
		{"metadata value not a string", stFile(`{"__metadata__":{"a":1}}`, 0), "__metadata__", sealer.RuleMetadata},
		{"metadata not an object", stFile(`{"__metadata__":"x"}`, 0), "__metadata__", sealer.RuleMetadata},
		{"sub-byte tensor", stFile(`{"w":{"dtype":"F4","shape":[3],"data_offsets":[0,1]}}`, 1), "w", sealer.RuleSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table, err := readTable(t, tt.file)
			assert.Nil(t, table)
			requireRule(t, err, tt.tensor, tt.rule)
		})
	}
}

func TestSafetensorsHeaderAcceptsAnyTensorOrder(t *testing.T) {
	header := `{"b":{"dtype":"F32","shape":[2,2],"data_offsets":[4,20]},"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"z":{"dtype":"I64","shape":[],"data_offsets":[20,28]},"e":{"dtype":"U8","shape":[0],"data_offsets":[28,28]}}    `
	file := stFile(header, 28)
	table, err := readTable(t, file)
	require.NoError(t, err)
	start := int64(8 + len(header))
	assert.Equal(t, int64(len(header)), table.HeaderLen)
	assert.Equal(t, map[string]string{"format": "pt"}, table.Metadata)
	assert.Equal(t, []sealer.Tensor{
		{Name: "a", DType: "BF16", Shape: []uint64{2}, Offset: start, Size: 4},
		{Name: "b", DType: "F32", Shape: []uint64{2, 2}, Offset: start + 4, Size: 16},
		{Name: "z", DType: "I64", Shape: []uint64{}, Offset: start + 20, Size: 8},
		{Name: "e", DType: "U8", Shape: []uint64{0}, Offset: start + 28, Size: 0},
	}, table.Tensors)
}

func TestSafetensorsEmptyHeader(t *testing.T) {
	table, err := readTable(t, stFile(`{}`, 0))
	require.NoError(t, err)
	assert.Empty(t, table.Tensors)
	assert.Nil(t, table.Metadata)
}

func TestSafetensorsTableRoundTrips(t *testing.T) {
	table, err := LayoutSafetensors(map[string]string{"format": "pt", "note": "<&>\u00e9"}, []sealer.Tensor{
		{Name: "model.embed_tokens.weight", DType: "BF16", Shape: []uint64{16, 8}},
		{Name: "model.layers.0.mlp.down_proj.weight", DType: "F32", Shape: []uint64{8, 4}},
		{Name: "lm_head.bias", DType: "F16", Shape: []uint64{}},
		{Name: "packed", DType: "F4", Shape: []uint64{6}},
	})
	require.NoError(t, err)
	assert.Zero(t, table.HeaderLen%8, "padded to 8 bytes")
	header, err := table.Header()
	require.NoError(t, err)
	file := append(header, make([]byte, table.DataSize())...)
	assert.Equal(t, table.FileSize(), int64(len(file)))

	back, err := readTable(t, file)
	require.NoError(t, err)
	assert.Equal(t, table, back)
	assert.Equal(t, table.Digest(), back.Digest())

	again, err := back.Header()
	require.NoError(t, err)
	assert.Equal(t, header, again, "the encoding is stable")
}

func TestTensorTableDigestCoversEveryField(t *testing.T) {
	base, err := LayoutSafetensors(map[string]string{"k": "v"}, []sealer.Tensor{
		{Name: "a", DType: "U8", Shape: []uint64{4}}, {Name: "b", DType: "U8", Shape: []uint64{2, 2}},
	})
	require.NoError(t, err)
	d := base.Digest()
	changes := map[string]func(*TensorTable){
		"name":     func(t *TensorTable) { t.Tensors[0].Name = "c" },
		"dtype":    func(t *TensorTable) { t.Tensors[0].DType = "I8" },
		"shape":    func(t *TensorTable) { t.Tensors[1].Shape = []uint64{4} },
		"offset":   func(t *TensorTable) { t.Tensors[1].Offset++ },
		"size":     func(t *TensorTable) { t.Tensors[1].Size++ },
		"drop one": func(t *TensorTable) { t.Tensors = t.Tensors[1:] },
		"swap names": func(t *TensorTable) {
			t.Tensors[0].Name, t.Tensors[1].Name = t.Tensors[1].Name, t.Tensors[0].Name
		},
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			c := *base
			c.Tensors = sealer.CloneTensors(base.Tensors)
			c.Metadata = map[string]string{"k": "v"}
			change(&c)
			assert.NotEqual(t, d, c.Digest())
		})
	}
}

func TestTensorTableOverlapping(t *testing.T) {
	table, err := LayoutSafetensors(nil, []sealer.Tensor{
		{Name: "a", DType: "U8", Shape: []uint64{10}},
		{Name: "empty", DType: "U8", Shape: []uint64{0}},
		{Name: "b", DType: "U8", Shape: []uint64{10}},
		{Name: "c", DType: "U8", Shape: []uint64{10}},
	})
	require.NoError(t, err)
	s := table.DataStart()
	names := func(ts []sealer.Tensor) string {
		var n []string
		for _, x := range ts {
			n = append(n, x.Name)
		}
		return strings.Join(n, ",")
	}
	assert.Equal(t, "", names(table.Overlapping(0, s)), "the header holds no tensor")
	assert.Equal(t, "a", names(table.Overlapping(s, s+1)))
	assert.Equal(t, "a", names(table.Overlapping(s+9, s+10)))
	assert.Equal(t, "a,b", names(table.Overlapping(s+9, s+11)))
	assert.Equal(t, "b", names(table.Overlapping(s+10, s+20)))
	assert.Equal(t, "a,b,c", names(table.Overlapping(0, s+30)))
	x, ok := table.Lookup("c")
	require.True(t, ok)
	assert.Equal(t, s+20, x.Offset)
	_, ok = table.Lookup("d")
	assert.False(t, ok)
}
