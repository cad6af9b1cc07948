package sealer

import (
	"crypto/hmac"
	"time"
)

// Shard is the record of one sealed model shard. It holds no device address.
// The signature is set by Sign and checked by CheckSignature; every exported
// field is covered by it.
type Shard struct {
	ID          string
	Device      int
	Size        int64
	Digest      string // hex SHA-256 of the whole data
	ChunkSize   int64
	ChunkRoot   string // hex SHA-256 over the ordered chunk digests
	SealedAt    time.Time
	ModelRef    string
	ShardIndex  int
	TotalShards int

	signature []byte
}

// Signed reports whether the record carries a signature.
func (s Shard) Signed() bool { return len(s.signature) > 0 }

// Chunks returns the number of chunks the shard's data is split into.
func (s Shard) Chunks() int64 {
	if s.ChunkSize <= 0 {
		return 0
	}
	return (s.Size + s.ChunkSize - 1) / s.ChunkSize
}

// Equal reports whether s and o are the same record: every field and the
// signature. The signature is compared in constant time.
func (s Shard) Equal(o Shard) bool {
	return hmac.Equal(s.signature, o.signature) &&
		s.ID == o.ID && s.Device == o.Device && s.Size == o.Size &&
		s.Digest == o.Digest && s.ChunkSize == o.ChunkSize && s.ChunkRoot == o.ChunkRoot &&
		s.SealedAt.Equal(o.SealedAt) && s.ModelRef == o.ModelRef &&
		s.ShardIndex == o.ShardIndex && s.TotalShards == o.TotalShards
}
