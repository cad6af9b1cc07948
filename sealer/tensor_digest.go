package sealer

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
)

// tensorTableVersion opens the canonical encoding of a tensor table.
const tensorTableVersion = "vramseal/tensor-table/v1"

// Digest is the hex SHA-256 of the table's canonical encoding: the header
// length, every tensor in table order (name, dtype, shape, offset, size,
// each length-prefixed) and the metadata in key order. A shard record binds
// it, so a table swapped for another is caught as tampering.
func (t *TensorTable) Digest() string {
	b := appendBytes(nil, tensorTableVersion)
	b = appendInt(b, t.HeaderLen)
	b = appendInt(b, int64(len(t.Tensors)))
	for _, x := range t.Tensors {
		b = appendBytes(b, x.Name)
		b = appendBytes(b, x.DType)
		b = appendInt(b, int64(len(x.Shape)))
		for _, d := range x.Shape {
			b = appendInt(b, int64(d))
		}
		b = appendInt(b, x.Offset)
		b = appendInt(b, x.Size)
	}
	keys := make([]string, 0, len(t.Metadata))
	for k := range t.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = appendInt(b, int64(len(keys)))
	for _, k := range keys {
		b = appendBytes(b, k)
		b = appendBytes(b, t.Metadata[k])
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Overlapping returns the tensors that share at least one byte with the file
// range [begin, end), in offset order. Bytes of the header overlap none.
func (t *TensorTable) Overlapping(begin, end int64) []Tensor {
	var out []Tensor
	for _, x := range t.Tensors {
		if x.Offset < end && begin < x.End() && x.Size > 0 {
			out = append(out, x)
		}
	}
	return out
}

// Lookup returns the tensor called name.
func (t *TensorTable) Lookup(name string) (Tensor, bool) {
	for _, x := range t.Tensors {
		if x.Name == name {
			return x, true
		}
	}
	return Tensor{}, false
}
