package actors

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// Reasons an IntegrityError gives.
const (
	ReasonDigestMismatch    = "digest_mismatch"
	ReasonChunkRootMismatch = "chunk_root_mismatch"
	ReasonSignatureMismatch = "signature_mismatch"
	ReasonRecordMismatch    = "record_mismatch"
)

// IntegrityError says what no longer matches in a sealed shard. It matches
// messages.ErrSealVerificationFailed with errors.Is.
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
		return fmt.Sprintf("shard %q on device %d: chunk %d (bytes %d-%d%s) does not match its sealed digest: %v",
			e.ShardID, e.Device, e.Chunk, e.Offset, e.Offset+e.Length-1, tensorsPhrase(e.Tensors), messages.ErrSealVerificationFailed)
	}
	return fmt.Sprintf("shard %q on device %d: %s: %v", e.ShardID, e.Device, e.Reason, messages.ErrSealVerificationFailed)
}

// Is makes errors.Is(err, messages.ErrSealVerificationFailed) true.
func (e *IntegrityError) Is(target error) bool { return target == messages.ErrSealVerificationFailed }

// VerifyOptions tune a re-hash.
type VerifyOptions struct {
	// Workers is how many chunks are read and hashed at once (at least 1).
	Workers int
	// Limiter, if set, bounds the bytes read per second. Its burst must be
	// at least the shard's chunk size.
	Limiter *rate.Limiter
	// ReadRetries is how many times a failed read is retried before it
	// counts as a device fault.
	ReadRetries int
	// Buffers supplies the staging buffers, one per worker.
	Buffers *BufferPool
}

// VerifyShard re-hashes every chunk of v from device memory, reading through
// the GPU actor and hashing on the caller's workers, and compares each with
// its sealed digest. It returns nil, an *IntegrityError, an error wrapping
// messages.ErrDeviceFault when reads keep failing, messages.ErrUnknownShard
// when the shard was released meanwhile, or ctx's error.
func VerifyShard(ctx context.Context, g *GPURef, v ShardView, opts VerifyOptions) error {
	matched := false
	if err := VerifyShards(ctx, g, []ShardView{v}, opts, func(ShardView) { matched = true }); err != nil {
		return err
	}
	if !matched {
		return unknownShard(v.Record.ID)
	}
	return nil
}

// VerifyShards re-hashes every chunk of every view with one pool of
// workers, so that many small shards keep every worker as busy as one large
// one. It calls matched, from a worker, for each shard once all its chunks
// have matched; matched must not block. Shards released meanwhile are
// skipped. It returns at the first integrity failure, device fault or end
// of ctx, with the errors VerifyShard describes.
func VerifyShards(ctx context.Context, g *GPURef, views []ShardView, opts VerifyOptions, matched func(ShardView)) error {
	// Chunks are numbered across shards: view i owns [starts[i], starts[i+1]).
	starts := make([]int64, len(views)+1)
	var bufSize int64
	for i, v := range views {
		rec := v.Record
		if sealer.ChunkRoot(v.Chunks) != rec.ChunkRoot || int64(len(v.Chunks)) != rec.Chunks() {
			return &IntegrityError{ShardID: rec.ID, Device: g.index, Reason: ReasonChunkRootMismatch}
		}
		starts[i+1] = starts[i] + int64(len(v.Chunks))
		bufSize = max(bufSize, min(rec.ChunkSize, rec.Size))
	}
	total := starts[len(views)]
	left := make([]atomic.Int64, len(views))
	released := make([]atomic.Bool, len(views))
	for i, v := range views {
		left[i].Store(int64(len(v.Chunks)))
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(int64(max(opts.Workers, 1)), total) {
		wg.Go(func() {
			buf, err := opts.Buffers.Get(ctx, bufSize)
			if err != nil {
				cancel(err)
				return
			}
			defer opts.Buffers.Put(buf)
			for {
				k := next.Add(1) - 1
				if k >= total || ctx.Err() != nil {
					return
				}
				i := sort.Search(len(views), func(j int) bool { return starts[j+1] > k })
				if released[i].Load() {
					continue
				}
				err := verifyChunk(ctx, g, views[i], k-starts[i], buf.Bytes, opts)
				switch {
				case err == nil:
					if left[i].Add(-1) == 0 {
						matched(views[i])
					}
				case errors.Is(err, messages.ErrUnknownShard):
					released[i].Store(true)
				default:
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

func verifyChunk(ctx context.Context, g *GPURef, v ShardView, i int64, buf []byte, opts VerifyOptions) error {
	rec := v.Record
	off := i * rec.ChunkSize
	n := min(rec.ChunkSize, rec.Size-off)
	if int64(len(buf)) < n {
		return fmt.Errorf("staging buffer of %d bytes is smaller than chunk size %d: %w", len(buf), n, messages.ErrConfig)
	}
	if opts.Limiter != nil {
		if err := opts.Limiter.WaitN(ctx, int(n)); err != nil {
			return err
		}
	}
	if err := readWithRetry(g, v, off, buf[:n], opts.ReadRetries); err != nil {
		return err
	}
	sum := sealer.SumChunk(buf[:n])
	if sum != v.Chunks[i] {
		return &IntegrityError{
			ShardID: rec.ID, Device: g.index, Reason: ReasonDigestMismatch,
			Chunk: i, Offset: off, Length: n,
			Expected: hex.EncodeToString(v.Chunks[i][:]), Actual: hex.EncodeToString(sum[:]),
			Tensors: overlappingTensorNames(rec.Tensors, off, n),
		}
	}
	return nil
}

// readWithRetry retries reads that fail with a copy error; a read that keeps
// failing is a device fault.
func readWithRetry(g *GPURef, v ShardView, off int64, buf []byte, retries int) error {
	var err error
	for range retries + 1 {
		err = g.Read(v.Record.ID, v.Gen, off, buf)
		if err == nil || !errors.Is(err, cuda.ErrCopyFailed) {
			return err
		}
	}
	return fmt.Errorf("shard %q: read failed %d times: %w: %w", v.Record.ID, retries+1, messages.ErrDeviceFault, err)
}
