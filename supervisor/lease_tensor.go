package supervisor

import (
	"slices"

	"github.com/vramseal/vramseal/sealer"
)

// Tensor looks up the leased shard's tensor called name (a shard sealed
// from a safetensors file carries its tensor table). Its Offset counts from
// the shard's first byte, so on the CUDA backend the tensor's bytes start at
// DevicePointer() + Offset. The result is a copy: changing it changes
// nothing in the lease or the sealed record.
func (l *Lease) Tensor(name string) (Tensor, bool) {
	t, ok := sealer.LookupTensor(l.shard.Tensors, name)
	t.Shape = slices.Clone(t.Shape)
	return t, ok
}
