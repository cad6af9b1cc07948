package sealer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/vramseal/vramseal/internal/units"
	"github.com/vramseal/vramseal/messages"
)

// Chunk size bounds, in bytes. A chunk size is a power of two between
// MinChunkSize and MaxChunkSize; DefaultChunkSize is used when none is set.
const (
	MinChunkSize     = 64 << 10
	MaxChunkSize     = 64 << 20
	DefaultChunkSize = 4 << 20
)

// ChunkDigest is the SHA-256 of one chunk.
type ChunkDigest [sha256.Size]byte

// ValidateChunkSize checks that n is a power of two from MinChunkSize to
// MaxChunkSize.
func ValidateChunkSize(n int64) error {
	if n < MinChunkSize || n > MaxChunkSize || n&(n-1) != 0 {
		return fmt.Errorf("%w: chunk size %d bytes: want a power of two from %d (%s) to %d (%s)",
			messages.ErrInvalidInput, n,
			MinChunkSize, units.Bytes(MinChunkSize), MaxChunkSize, units.Bytes(MaxChunkSize))
	}
	return nil
}

// SumChunk returns the SHA-256 of one chunk.
func SumChunk(p []byte) ChunkDigest { return sha256.Sum256(p) }

// ChunkRoot returns the hex SHA-256 over the ordered chunk digests, each
// taken as its 32 raw bytes. It binds every chunk and their order to one value
// that the signature covers.
func ChunkRoot(chunks []ChunkDigest) string {
	h := sha256.New()
	for i := range chunks {
		h.Write(chunks[i][:])
	}
	return hex.EncodeToString(h.Sum(nil))
}
