package sealer

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"

	"github.com/vramseal/vramseal/messages"
)

// Tensor is one tensor of a safetensors file; see messages.Tensor.
type Tensor = messages.Tensor

// tensorTableVersion opens the canonical encoding of a tensor table.
const tensorTableVersion = "vramseal/tensor-table/v1"

// TensorsDigest is the hex SHA-256 of the canonical encoding of a tensor
// table: every tensor in order (name, dtype, shape, offset, size, each
// length-prefixed), or "" for no tensors. A shard record binds it, so a
// table swapped for another is caught as tampering.
func TensorsDigest(tensors []Tensor) string {
	if len(tensors) == 0 {
		return ""
	}
	b := appendBytes(nil, tensorTableVersion)
	b = appendInt(b, int64(len(tensors)))
	for _, x := range tensors {
		b = appendBytes(b, x.Name)
		b = appendBytes(b, x.DType)
		b = appendInt(b, int64(len(x.Shape)))
		for _, d := range x.Shape {
			b = appendInt(b, int64(d))
		}
		b = appendInt(b, x.Offset)
		b = appendInt(b, x.Size)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// OverlappingTensors returns those of tensors (in offset order) that share
// at least one byte with [begin, end).
func OverlappingTensors(tensors []Tensor, begin, end int64) []Tensor {
	var out []Tensor
	for _, x := range tensors {
		if x.Offset < end && begin < x.End() && x.Size > 0 {
			out = append(out, x)
		}
	}
	return out
}

// LookupTensor returns the tensor of tensors called name.
func LookupTensor(tensors []Tensor, name string) (Tensor, bool) {
	for _, x := range tensors {
		if x.Name == name {
			return x, true
		}
	}
	return Tensor{}, false
}

// CloneTensors is a deep copy of tensors, Shapes included, so that the copy
// shares no memory with what it was made from; nil stays nil.
func CloneTensors(tensors []Tensor) []Tensor {
	if tensors == nil {
		return nil
	}
	out := slices.Clone(tensors)
	for i := range out {
		out[i].Shape = slices.Clone(out[i].Shape)
	}
	return out
}

// ValidateTensors checks that tensors can be the table of a shard of size
// bytes: names non-empty and distinct, known dtypes, each size matching its
// shape, in offset order after an 8-byte length, with no gap or overlap,
// ending at size. The error wraps messages.ErrInvalidInput.
func ValidateTensors(tensors []Tensor, size int64) error {
	if len(tensors) == 0 {
		return nil
	}
	names := make(map[string]bool, len(tensors))
	at := tensors[0].Offset
	if at < 8 {
		return HeaderErr(tensors[0].Name, RuleGap, "the data starts at %d, inside the 8-byte header length", at)
	}
	for _, x := range tensors {
		if x.Name == "" {
			return HeaderErr("", RuleTensorName, "a tensor has an empty name")
		}
		if names[x.Name] {
			return HeaderErr(x.Name, RuleDuplicate, "the name appears more than once")
		}
		names[x.Name] = true
		want, err := TensorBytes(x.Name, x.DType, x.Shape)
		if err != nil {
			return err
		}
		switch {
		case x.Size != int64(want):
			return HeaderErr(x.Name, RuleSize, "%d bytes, but shape %v of %s needs %d", x.Size, x.Shape, x.DType, want)
		case x.Offset < at:
			return HeaderErr(x.Name, RuleOverlap, "starts at %d, before the previous tensor ends at %d", x.Offset, at)
		case x.Offset > at:
			return HeaderErr(x.Name, RuleGap, "starts at %d, after the previous tensor ends at %d", x.Offset, at)
		}
		at = x.End()
	}
	if at != size {
		return HeaderErr("", RuleFileSize, "the tensors end at %d, but the shard is %d bytes", at, size)
	}
	return nil
}
