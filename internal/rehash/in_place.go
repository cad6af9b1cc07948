package rehash

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/internal/parallel"
	"github.com/vramseal/vramseal/messages"
)

// An in-place re-hash runs in batches of chunksPerWorker chunks per worker
// (or as many as a device that hashes on itself asks for, see
// deviceBatcher), lanes batches at once: while one batch hashes, the next takes its leases
// and starts, so no core idles at a batch's end waiting for the slowest
// chunk, a lease or a comparison. A stop waits for the batches in flight:
// lanes x chunksPerWorker chunks of hashing per core.
const (
	chunksPerWorker = 2
	lanes           = 2
)

// deviceBatcher is a ChunkHasher that hashes on its device and says how
// many chunks a call should carry: a GPU hashes a chunk per thread and needs
// thousands at once, where host cores need only a few each.
type deviceBatcher interface {
	// BatchChunks is the chunks a call should carry, or zero to batch per
	// worker.
	BatchChunks() int64
}

// batchLimit is how many chunks a batch holds on h: what h asks for, else
// chunksPerWorker for each worker.
func batchLimit(h cuda.ChunkHasher, workers int) int64 {
	if b, ok := h.(deviceBatcher); ok && b.BatchChunks() > 0 {
		return b.BatchChunks()
	}
	return int64(max(workers, 1) * chunksPerWorker)
}

// piece is a run of one shard's chunks in an in-place batch.
type piece struct {
	shard       int
	first, last int64 // chunk indices, last exclusive
}

// verifyInPlace hashes the shards where they live, a batch of spans per
// call (one call for all of a batch's spans where the device is a
// cuda.SpanHasher), each shard in the batch under a read lease, on lanes
// goroutines that take the batches in turn. It returns at the first
// failure, once every lane has.
func verifyInPlace(ctx context.Context, m Memory, h cuda.ChunkHasher, shards []Shard, opts Options, matched func(int)) error {
	batches := inPlaceBatches(shards, batchLimit(h, opts.Workers))
	prog := newProgress(shards)
	queue := parallel.NewQueue(len(batches))
	return runOwned(ctx, int64(min(lanes, len(batches))), "re-hash lane", func(ctx context.Context) error {
		for k, ok := queue.Next(); ok; k, ok = queue.Next() {
			if err := verifyBatch(ctx, m, h, shards, batches[k], opts, prog, matched); err != nil {
				return err
			}
		}
		return nil
	})
}

// inPlaceBatches cuts the chunks of shards, in order, into batches of up to
// limit chunks; a batch may hold pieces of several shards.
func inPlaceBatches(shards []Shard, limit int64) [][]piece {
	var batches [][]piece
	var batch []piece
	var size int64
	for i, s := range shards {
		for k := int64(0); k < int64(len(s.Chunks)); {
			n := min(limit-size, int64(len(s.Chunks))-k)
			batch = append(batch, piece{shard: i, first: k, last: k + n})
			size += n
			k += n
			if size == limit {
				batches, batch, size = append(batches, batch), nil, 0
			}
		}
	}
	if size > 0 {
		batches = append(batches, batch)
	}
	return batches
}

// verifyBatch hashes one batch under read leases and compares every digest.
func verifyBatch(ctx context.Context, m Memory, h cuda.ChunkHasher, shards []Shard, batch []piece, opts Options, prog *progress, matched func(int)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var spans []cuda.Span
	var pieces []piece
	var ends []func()
	defer func() {
		for _, end := range ends {
			end()
		}
	}()
	leased := map[int]cuda.Handle{}
	for _, p := range batch {
		if prog.gone[p.shard].Load() {
			continue
		}
		rec := shards[p.shard].Record
		handle, ok := leased[p.shard]
		if !ok {
			hh, end, err := m.LeaseRead(rec.ID, rec.Generation)
			if errors.Is(err, messages.ErrUnknownShard) {
				prog.gone[p.shard].Store(true)
				continue
			}
			if err != nil {
				return err
			}
			handle, leased[p.shard] = hh, hh
			ends = append(ends, end)
		}
		off := p.first * rec.ChunkSize
		length := min(p.last*rec.ChunkSize, rec.Size) - off
		if opts.Limiter != nil {
			for k := p.first; k < p.last; k++ {
				if err := opts.Limiter.WaitN(ctx, int(min(rec.ChunkSize, rec.Size-k*rec.ChunkSize))); err != nil {
					return err
				}
			}
		}
		spans = append(spans, cuda.Span{Handle: handle, Offset: off, Length: length, ChunkSize: rec.ChunkSize})
		pieces = append(pieces, p)
	}
	if len(spans) == 0 {
		return nil
	}
	sums, err := hashSpans(m, h, spans, opts.ReadRetries)
	if err != nil {
		return err
	}
	for j, p := range pieces {
		s := shards[p.shard]
		rec := s.Record
		if int64(len(sums[j])) != p.last-p.first {
			return fmt.Errorf("device %d: hashed %d chunks of shard %+q, want %d: %w", m.Index(), len(sums[j]), rec.ID, p.last-p.first, messages.ErrDeviceFault)
		}
		for k := p.first; k < p.last; k++ {
			if sum := sums[j][k-p.first]; sum != s.Chunks[k] {
				off := k * rec.ChunkSize
				n := min(rec.ChunkSize, rec.Size-off)
				return &messages.IntegrityError{
					ShardID: rec.ID, Device: m.Index(), Reason: messages.ReasonDigestMismatch,
					Chunk: k, Offset: off, Length: n,
					Expected: hex.EncodeToString(s.Chunks[k][:]), Actual: hex.EncodeToString(sum[:]),
					Tensors: overlappingTensorNames(rec.Tensors, off, n),
				}
			}
		}
		if prog.left[p.shard].Add(-(p.last - p.first)) == 0 {
			matched(p.shard)
		}
	}
	return nil
}

// hashSpans hashes spans in one call where the device can, retrying reads
// that fail with a copy error; one that keeps failing is a device fault.
func hashSpans(m Memory, h cuda.ChunkHasher, spans []cuda.Span, retries int) ([][][sha256.Size]byte, error) {
	var err error
	for range retries + 1 {
		var sums [][][sha256.Size]byte
		sums, err = hashOnce(h, spans)
		if err == nil || !errors.Is(err, cuda.ErrCopyFailed) {
			if err != nil {
				err = fmt.Errorf("device %d: hash in place: %w", m.Index(), err)
			}
			return sums, err
		}
	}
	return nil, fmt.Errorf("device %d: hash in place failed %d times: %w: %w", m.Index(), retries+1, messages.ErrDeviceFault, err)
}

func hashOnce(h cuda.ChunkHasher, spans []cuda.Span) ([][][sha256.Size]byte, error) {
	if sh, ok := h.(cuda.SpanHasher); ok {
		return sh.HashSpans(spans)
	}
	sums := make([][][sha256.Size]byte, len(spans))
	for i, s := range spans {
		var err error
		if sums[i], err = h.HashChunks(s.Handle, s.Offset, s.Length, s.ChunkSize); err != nil {
			return nil, err
		}
	}
	return sums, nil
}
