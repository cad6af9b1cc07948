package sealer

import (
	"crypto/hmac"
	"fmt"
	"time"
)

// Shard is the record of one sealed model shard. It holds no device address:
// Device is an index, and where the bytes live on the device is the GPU
// actor's business. Sign covers every exported field; the signature travels
// with the record (in JSON too) but is set only by Sign or by decoding.
type Shard struct {
	ID          string    // names the shard; see ValidateShardID
	Device      int       // index of the device holding the shard
	Size        int64     // bytes of data
	Digest      string    // hex SHA-256 of the whole data
	ChunkSize   int64     // bytes per chunk; the last may be shorter
	ChunkRoot   string    // hex SHA-256 over the ordered chunk digests
	SealedAt    time.Time // when the shard was sealed, in UTC
	ModelRef    string    // the model the shard belongs to; may be empty
	ShardIndex  int       // the shard's place in its model, from 0
	TotalShards int       // how many shards the model has; 0 if not given
	// Tensors is the tensor table of a safetensors shard, in offset order;
	// nil for opaque data. The signature covers its digest (TensorsDigest),
	// so a table swapped for another fails the check. It is shared between
	// copies of the record and never modified.
	Tensors []Tensor
	// Generation tells this sealing of ID from every other one, over the
	// worker's life and across its restarts: a record whose generation is
	// no longer live names memory that was freed.
	Generation uint64

	signature []byte // HMAC-SHA256 of the canonical record; nil if unsigned
}

// Signed reports whether the record carries a signature. It says nothing of
// whether the signature is valid; CheckSignature does.
func (s Shard) Signed() bool { return len(s.signature) > 0 }

// Chunks returns the number of chunks the shard's data is split into, or 0
// when Size or ChunkSize is not positive.
func (s Shard) Chunks() int64 {
	if s.Size <= 0 || s.ChunkSize <= 0 {
		return 0
	}
	n := s.Size / s.ChunkSize
	if s.Size%s.ChunkSize != 0 {
		n++
	}
	return n
}

// Equal reports whether s and o are the same record: every field, SealedAt
// as an instant, and the signature, which is compared in constant time.
func (s Shard) Equal(o Shard) bool {
	return hmac.Equal(s.signature, o.signature) &&
		s.ID == o.ID && s.Device == o.Device && s.Size == o.Size &&
		s.Digest == o.Digest && s.ChunkSize == o.ChunkSize && s.ChunkRoot == o.ChunkRoot &&
		s.SealedAt.Equal(o.SealedAt) && s.ModelRef == o.ModelRef &&
		s.ShardIndex == o.ShardIndex && s.TotalShards == o.TotalShards &&
		TensorsDigest(s.Tensors) == TensorsDigest(o.Tensors) && s.Generation == o.Generation
}

// String gives every field on one line, with strings escaped to ASCII, and
// says whether the record is signed. It is what %v and %+v print.
func (s Shard) String() string {
	return fmt.Sprintf("sealer.Shard{id:%+q device:%d size:%d digest:%+q chunk_size:%d chunk_root:%+q sealed_at:%s model_ref:%+q shard:%d/%d generation:%d%s %s}",
		s.ID, s.Device, s.Size, s.Digest, s.ChunkSize, s.ChunkRoot,
		s.SealedAt.UTC().Format(time.RFC3339Nano), s.ModelRef, s.ShardIndex, s.TotalShards, s.Generation, s.tensorsWord(), s.signedWord())
}

// GoString gives the record in Go syntax, without the signature bytes. It is
// what %#v prints.
func (s Shard) GoString() string {
	return fmt.Sprintf("sealer.Shard{ID:%+q, Device:%d, Size:%d, Digest:%+q, ChunkSize:%d, ChunkRoot:%+q, SealedAt:%#v, ModelRef:%+q, ShardIndex:%d, TotalShards:%d, Generation:%d} /* %s%s */",
		s.ID, s.Device, s.Size, s.Digest, s.ChunkSize, s.ChunkRoot,
		s.SealedAt.UTC(), s.ModelRef, s.ShardIndex, s.TotalShards, s.Generation, s.signedWord(), s.tensorsWord())
}

// tensorsWord says how many tensors the record lists, if any, with the
// start of the table's digest.
func (s Shard) tensorsWord() string {
	if len(s.Tensors) == 0 {
		return ""
	}
	return fmt.Sprintf(" tensors:%d@%s", len(s.Tensors), TensorsDigest(s.Tensors)[:12])
}

func (s Shard) signedWord() string {
	if s.Signed() {
		return "signed"
	}
	return "unsigned"
}
