package messages

import (
	"fmt"
	"strings"
)

// Reasons an IntegrityError gives.
const (
	// ReasonDigestMismatch: a chunk of device memory no longer hashes to
	// its sealed digest.
	ReasonDigestMismatch = "digest_mismatch"
	// ReasonChunkRootMismatch: the chunk digests kept for a shard no
	// longer hash to its signed chunk root.
	ReasonChunkRootMismatch = "chunk_root_mismatch"
	// ReasonSignatureMismatch: a record carries a signature that does not
	// match it.
	ReasonSignatureMismatch = "signature_mismatch"
	// ReasonRecordMismatch: a validly signed record of a live shard differs
	// from the record the runtime keeps.
	ReasonRecordMismatch = "record_mismatch"
)

// IntegrityError says what no longer matches in a sealed shard. It matches
// ErrSealVerificationFailed with errors.Is.
type IntegrityError struct {
	ShardID string
	Device  int
	Reason  string
	// Chunk, Offset and Length locate the corrupted bytes (digest mismatch).
	Chunk          int64
	Offset, Length int64
	// Expected and Actual are hex digests (digest mismatch).
	Expected, Actual string
	// Tensors names every tensor of the shard's table that overlaps the
	// corrupted bytes (digest mismatch of a safetensors shard).
	Tensors []string
}

// Error names the shard, the reason and, for corrupted memory, the chunk and
// byte range.
func (e *IntegrityError) Error() string {
	if e.Reason == ReasonDigestMismatch {
		return fmt.Sprintf("shard %+q on device %d: chunk %d (bytes %d-%d%s) does not match its sealed digest: %v",
			e.ShardID, e.Device, e.Chunk, e.Offset, e.Offset+e.Length-1, tensorsPhrase(e.Tensors), ErrSealVerificationFailed)
	}
	return fmt.Sprintf("shard %+q on device %d: %s: %v", e.ShardID, e.Device, e.Reason, ErrSealVerificationFailed)
}

// Is makes errors.Is(err, ErrSealVerificationFailed) true.
func (e *IntegrityError) Is(target error) bool { return target == ErrSealVerificationFailed }

// tensorsPhrase is ", tensor a, b" for an error message, or "" for none.
// Names are quoted with Go escapes, so no byte of them reaches a log raw.
func tensorsPhrase(names []string) string {
	if len(names) == 0 {
		return ""
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%+q", n)
	}
	word := "tensor"
	if len(names) > 1 {
		word = "tensors"
	}
	return ", " + word + " " + strings.Join(q, ", ")
}
