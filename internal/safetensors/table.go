package safetensors

import "github.com/vramseal/vramseal/sealer"

// Digest is TensorsDigest of the table's tensors.
func (t *TensorTable) Digest() string { return sealer.TensorsDigest(t.Tensors) }

// Overlapping returns the tensors that share at least one byte with the file
// range [begin, end), in offset order. Bytes of the header overlap none.
func (t *TensorTable) Overlapping(begin, end int64) []sealer.Tensor {
	return sealer.OverlappingTensors(t.Tensors, begin, end)
}

// Lookup returns the tensor called name.
func (t *TensorTable) Lookup(name string) (sealer.Tensor, bool) {
	return sealer.LookupTensor(t.Tensors, name)
}
