package supervisor

import (
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// The types a Runtime takes and returns, declared where the embedder finds
// them. Each is the same type as the one it names, so values pass freely
// between this package and those below it.
type (
	// SealRequest asks Seal to seal one shard onto one device: its ID,
	// device, exactly Size bytes from Data, and for a safetensors file its
	// tensor table (Tensors), which the signed record then carries.
	SealRequest = messages.SealRequest
	// SealCheck checks a seal's bytes against what a publisher says they
	// must be, before the seal is acknowledged (see SealRequest.Check).
	SealCheck = messages.SealCheck
	// Shard is the signed record of a sealed shard, as Seal returns it.
	// Verify, Acquire and Free take it back; any change to a signed field
	// makes it fail its check.
	Shard = sealer.Shard
	// Tensor is one tensor of a safetensors shard: name, dtype, shape, and
	// where its bytes lie (Offset counts from the shard's first byte).
	Tensor = messages.Tensor
	// Capacity is one device's memory as the runtime accounts for it.
	Capacity = messages.Capacity
	// ShardStatus describes one live shard, with when it was last fully
	// verified; its JSON is what the CLI's /shards serves.
	ShardStatus = messages.ShardStatus
	// ModelVerified describes a model whose signed manifest verified, for
	// RecordModelVerified.
	ModelVerified = messages.ModelVerified
	// Key signs shard records (Config.Key); derive it with DeriveKeys, or
	// let Open derive it from a token file.
	Key = sealer.Key
	// View is a read-only view of leased memory on a backend that keeps it
	// in host memory (the Sim); see Lease.View.
	View = cuda.View
)

// MinTokenLen is the shortest worker token accepted, in bytes.
const MinTokenLen = sealer.MinTokenLen
