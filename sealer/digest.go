package sealer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/vramseal/vramseal/messages"
)

// Chunk size bounds. A chunk size is a power of two between them.
const (
	MinChunkSize     = 64 << 10
	MaxChunkSize     = 64 << 20
	DefaultChunkSize = 4 << 20
)

// ChunkDigest is the SHA-256 of one chunk.
type ChunkDigest [sha256.Size]byte

// ValidateChunkSize checks that n is a power of two within the bounds.
func ValidateChunkSize(n int64) error {
	if n < MinChunkSize || n > MaxChunkSize || n&(n-1) != 0 {
		return fmt.Errorf("%w: chunk size %d: want a power of two from %d to %d", messages.ErrInvalidInput, n, MinChunkSize, MaxChunkSize)
	}
	return nil
}

// Digester is an io.Writer that computes the SHA-256 of everything written
// and one SHA-256 per chunk.
type Digester struct {
	chunkSize int64
	whole     hash.Hash
	chunk     hash.Hash
	inChunk   int64
	chunks    []ChunkDigest
}

// NewDigester returns a Digester for chunks of chunkSize bytes.
func NewDigester(chunkSize int64) (*Digester, error) {
	if err := ValidateChunkSize(chunkSize); err != nil {
		return nil, err
	}
	return &Digester{chunkSize: chunkSize, whole: sha256.New(), chunk: sha256.New()}, nil
}

// Write hashes p. It never fails.
func (d *Digester) Write(p []byte) (int, error) {
	d.whole.Write(p)
	n := len(p)
	for len(p) > 0 {
		take := min(int64(len(p)), d.chunkSize-d.inChunk)
		d.chunk.Write(p[:take])
		d.inChunk += take
		p = p[take:]
		if d.inChunk == d.chunkSize {
			d.closeChunk()
		}
	}
	return n, nil
}

func (d *Digester) closeChunk() {
	var c ChunkDigest
	d.chunk.Sum(c[:0])
	d.chunks = append(d.chunks, c)
	d.chunk.Reset()
	d.inChunk = 0
}

// Digests ends the stream and returns its digests.
func (d *Digester) Digests() Digests {
	if d.inChunk > 0 {
		d.closeChunk()
	}
	return Digests{Digest: hex.EncodeToString(d.whole.Sum(nil)), Chunks: d.chunks, ChunkRoot: ChunkRoot(d.chunks)}
}

// Digests are the results of a Digester.
type Digests struct {
	Digest    string
	ChunkRoot string
	Chunks    []ChunkDigest
}

// ChunkRoot is the hex SHA-256 over the ordered chunk digests.
func ChunkRoot(chunks []ChunkDigest) string {
	h := sha256.New()
	for _, c := range chunks {
		h.Write(c[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// SumChunk returns the SHA-256 of one chunk.
func SumChunk(p []byte) ChunkDigest { return sha256.Sum256(p) }
