package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"slices"

	"github.com/vramseal/vramseal/sealer"
)

// LayoutSafetensors lays tensors out one after another in the order given,
// as a safetensors writer does, and returns the table of a file holding
// them: each tensor's Name, DType and Shape are used, and its Offset and
// Size are computed. The header is padded with spaces to a multiple of 8
// bytes. Header encodes the table; the file is Header() followed by
// DataSize() bytes of tensor data.
func LayoutSafetensors(metadata map[string]string, tensors []sealer.Tensor) (*TensorTable, error) {
	t := &TensorTable{Metadata: metadata, Tensors: slices.Clone(tensors)}
	var end uint64
	for i := range t.Tensors {
		x := &t.Tensors[i]
		n, err := sealer.TensorBytes(x.Name, x.DType, x.Shape)
		if err != nil {
			return nil, err
		}
		x.Offset, x.Size = int64(end), int64(n)
		end += n
	}
	body, err := t.headerJSON(0)
	if err != nil {
		return nil, err
	}
	t.HeaderLen = int64((len(body) + 7) / 8 * 8)
	for i := range t.Tensors {
		t.Tensors[i].Offset += t.DataStart()
	}
	return t, nil
}

// DataSize is the number of tensor data bytes after the header.
func (t *TensorTable) DataSize() int64 {
	var n int64
	for _, x := range t.Tensors {
		n += x.Size
	}
	return n
}

// FileSize is the size of the file the table describes.
func (t *TensorTable) FileSize() int64 { return t.DataStart() + t.DataSize() }

// Header encodes the table as a safetensors file begins: the 8-byte
// little-endian header length, then the JSON header padded with spaces to
// HeaderLen. It fails if the JSON does not fit in HeaderLen.
func (t *TensorTable) Header() ([]byte, error) {
	body, err := t.headerJSON(t.DataStart())
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > t.HeaderLen {
		return nil, sealer.HeaderErr("", sealer.RuleLength, "the header needs %d bytes, more than its length %d", len(body), t.HeaderLen)
	}
	out := binary.LittleEndian.AppendUint64(make([]byte, 0, 8+t.HeaderLen), uint64(t.HeaderLen))
	out = append(out, body...)
	return append(out, bytes.Repeat([]byte{' '}, int(t.HeaderLen)-len(body))...), nil
}

// headerJSON encodes the header's JSON, with data offsets counted from
// dataStart, tensors in table order.
func (t *TensorTable) headerJSON(dataStart int64) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	if t.Metadata != nil {
		meta, err := json.Marshal(t.Metadata)
		if err != nil {
			return nil, err
		}
		b.WriteString(`"` + safetensorsMetadataKey + `":`)
		b.Write(meta)
	}
	for i, x := range t.Tensors {
		if i > 0 || t.Metadata != nil {
			b.WriteByte(',')
		}
		entry, err := json.Marshal(struct {
			DType       string   `json:"dtype"`
			Shape       []uint64 `json:"shape"`
			DataOffsets []int64  `json:"data_offsets"`
		}{x.DType, nonNilShape(x.Shape), []int64{x.Offset - dataStart, x.End() - dataStart}})
		if err != nil {
			return nil, err
		}
		name, err := json.Marshal(x.Name)
		if err != nil {
			return nil, err
		}
		b.Write(name)
		b.WriteByte(':')
		b.Write(entry)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func nonNilShape(s []uint64) []uint64 {
	if s == nil {
		return []uint64{}
	}
	return s
}
