package cuda

import (
	"crypto/sha256"
	"fmt"

	"github.com/vramseal/vramseal/messages"
)

// ChunkHasher is an optional Device capability: hashing device memory where
// it lives, without copying it out. Verify and the background scrub use it
// when a device has it (a type assertion on the Device) and copy chunks out
// to hash them on host cores otherwise.
//
// A call hashes its chunks in parallel: Sim on up to GOMAXPROCS cores,
// Driver with one GPU thread per chunk in one kernel launch, and a GPU's
// launches run one after another. So hash whole shards (or large spans) per
// call, not one chunk per call: a 256 MiB shard in 4 MiB chunks is 64 GPU
// threads in one call, but 64 launches of one thread each chunk by chunk.
type ChunkHasher interface {
	// HashChunks returns the SHA-256 of each consecutive chunk of chunkSize
	// bytes of allocation h in [offset, offset+length), in order; the last
	// chunk may be shorter. offset and length obey the bounds of Read, and
	// chunkSize must be positive. A digest equals crypto/sha256.Sum256 of the
	// same bytes, so digests recorded by host hashing at seal time compare
	// directly. Errors wrap the same sentinels as Read.
	HashChunks(h Handle, offset, length, chunkSize int64) ([][sha256.Size]byte, error)
}

// Span names chunks of one allocation to hash: Length bytes of allocation
// Handle from Offset, in chunks of ChunkSize bytes, the last one short.
type Span struct {
	Handle                    Handle
	Offset, Length, ChunkSize int64
}

// SpanHasher is a ChunkHasher that hashes spans of many allocations in one
// call. On a GPU that is one kernel launch with a thread for every chunk of
// every span: a scrub of many shards needs it to give the GPU enough
// threads, where a call per shard would launch one small grid after
// another.
type SpanHasher interface {
	ChunkHasher
	// HashSpans returns, for each span in order, what HashChunks returns
	// for it, and obeys the same rules; spans may overlap or name the same
	// allocation. It fails as a whole if any span does.
	HashSpans(spans []Span) ([][][sha256.Size]byte, error)
}

// chunkCount checks a span's chunk size and returns how many chunks its
// length makes; name prefixes the error.
func chunkCount(name string, length, chunkSize int64) (int64, error) {
	if chunkSize <= 0 {
		return 0, fmt.Errorf("%s: hash chunks of %d bytes: chunk size must be positive: %w", name, chunkSize, messages.ErrInvalidInput)
	}
	return length/chunkSize + min(length%chunkSize, 1), nil
}

// NewSpanSums checks every span's chunk size and returns room for the
// digests of each, and the number of chunks in all. The spans' bounds must
// have been checked, so that no length is negative or too large.
func NewSpanSums(name string, spans []Span) ([][][sha256.Size]byte, int64, error) {
	sums := make([][][sha256.Size]byte, len(spans))
	var total int64
	for i, s := range spans {
		n, err := chunkCount(name, s.Length, s.ChunkSize)
		if err != nil {
			return nil, 0, err
		}
		sums[i] = make([][sha256.Size]byte, n)
		total += n
	}
	return sums, total, nil
}
