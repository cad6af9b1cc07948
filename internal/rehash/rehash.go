// Package rehash proves sealed shards intact: it re-hashes their chunks from
// device memory, under read leases, on many workers at once, and compares
// each with its sealed digest. It hashes in place where the device can
// (cuda.ChunkHasher) and copies chunks out to host cores otherwise.
package rehash

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
	"github.com/vramseal/vramseal/internal/parallel"
	"github.com/vramseal/vramseal/internal/staging"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// Shard is a sealed shard as its GPU actor keeps it: the signed record and
// the digest of every chunk.
type Shard struct {
	Record sealer.Shard
	Chunks []sealer.ChunkDigest
}

// Memory is one device's sealed memory, read under leases.
type Memory interface {
	// Index is the device's index in the runtime.
	Index() int
	// Device is the device the shards live on. Only reads and in-place
	// hashes of leased allocations are made through it.
	Device() cuda.Device
	// LeaseRead grants a read lease on the live shard id of the given
	// generation: the allocation that holds its bytes, not freed until end
	// is called. It fails with messages.ErrUnknownShard once the shard is
	// no longer live.
	LeaseRead(id string, generation uint64) (h cuda.Handle, end func(), err error)
}

// Options tune a re-hash.
type Options struct {
	// Workers is how many chunks are read and hashed at once (at least 1).
	Workers int
	// Limiter, if set, bounds the bytes hashed per second. Its burst must
	// be at least the shards' chunk size.
	Limiter *rate.Limiter
	// ReadRetries is how many times a failed read is retried before it
	// counts as a device fault.
	ReadRetries int
	// Buffers supplies the staging buffers of the copy-out path, one per
	// worker.
	Buffers *staging.Pool
}

// Verify re-hashes every chunk of s and compares each with its sealed
// digest. It returns nil, a *messages.IntegrityError, an error wrapping
// messages.ErrDeviceFault when reads keep failing, messages.ErrUnknownShard
// when the shard was freed meanwhile, or ctx's error.
func Verify(ctx context.Context, m Memory, s Shard, opts Options) error {
	matched := false
	if err := VerifyAll(ctx, m, []Shard{s}, opts, func(int) { matched = true }); err != nil {
		return err
	}
	if !matched {
		return fmt.Errorf("shard %+q: %w", s.Record.ID, messages.ErrUnknownShard)
	}
	return nil
}

// VerifyAll re-hashes every chunk of every shard: in place, on a device
// that hashes (cuda.ChunkHasher), in batches of a few chunks per worker (a
// GPU's whole launch where it hashes on the device), two
// batches in flight so that the next is leased while one hashes; else copied
// out, with one pool of workers over all chunks, so that many
// small shards keep every worker as busy as one large one. It
// calls matched(i), from a worker, once all chunks of shards[i] matched;
// matched must not block. Shards freed meanwhile are skipped. It returns at
// the first integrity failure, device fault or end of ctx, with the errors
// of Verify. Once ctx ends, its copy-out workers stop within one chunk and
// its in-place lanes once their batches in flight are hashed (two chunks per
// core each, or a GPU launch); it returns only once they have.
func VerifyAll(ctx context.Context, m Memory, shards []Shard, opts Options, matched func(i int)) error {
	// Chunks are numbered across shards: shard i owns [starts[i], starts[i+1]).
	starts := make([]int64, len(shards)+1)
	var bufSize int64
	for i, s := range shards {
		rec := s.Record
		if sealer.ChunkRoot(s.Chunks) != rec.ChunkRoot || int64(len(s.Chunks)) != rec.Chunks() {
			return &messages.IntegrityError{ShardID: rec.ID, Device: m.Index(), Reason: messages.ReasonChunkRootMismatch}
		}
		starts[i+1] = starts[i] + int64(len(s.Chunks))
		bufSize = max(bufSize, min(rec.ChunkSize, rec.Size))
	}
	if h, ok := m.Device().(cuda.ChunkHasher); ok {
		return verifyInPlace(ctx, m, h, shards, opts, matched)
	}
	total := starts[len(shards)]
	prog := newProgress(shards)
	chunks := parallel.NewQueue(int(total))
	return runOwned(ctx, min(int64(max(opts.Workers, 1)), total), "re-hash worker", func(ctx context.Context) error {
		buf, err := opts.Buffers.Get(ctx, bufSize)
		if err != nil {
			return err
		}
		defer opts.Buffers.Put(buf)
		w := worker{m: m, buf: buf.Bytes, opts: opts}
		for next, ok := chunks.Next(); ok && ctx.Err() == nil; next, ok = chunks.Next() {
			k := int64(next)
			i := sort.Search(len(shards), func(j int) bool { return starts[j+1] > k })
			if prog.gone[i].Load() {
				continue
			}
			err := w.verifyChunk(ctx, shards[i], k-starts[i])
			switch {
			case err == nil:
				if prog.left[i].Add(-1) == 0 {
					matched(i)
				}
			case errors.Is(err, messages.ErrUnknownShard):
				prog.gone[i].Store(true)
			default:
				return err
			}
		}
		return nil
	})
}

// progress is what the goroutines of one re-hash share: the chunks of each
// shard still to match, and the shards found freed.
type progress struct {
	left []atomic.Int64
	gone []atomic.Bool
}

func newProgress(shards []Shard) *progress {
	p := &progress{left: make([]atomic.Int64, len(shards)), gone: make([]atomic.Bool, len(shards))}
	for i, s := range shards {
		p.left[i].Store(int64(len(s.Chunks)))
	}
	return p
}

// runOwned runs n copies of work, each on a goroutine of its own, under a
// context that the first error (or panic, a software fault: it is ours)
// cancels, and returns that error, or ctx's, once all have ended.
func runOwned(ctx context.Context, n int64, name string, work func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if err := messages.CatchPanic(name, func() {
				if err := work(ctx); err != nil {
					cancel(err)
				}
			}); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// worker copies one chunk at a time out into buf and hashes it.
type worker struct {
	m    Memory
	buf  []byte
	opts Options
}

func (w *worker) verifyChunk(ctx context.Context, s Shard, i int64) error {
	rec := s.Record
	off := i * rec.ChunkSize
	n := min(rec.ChunkSize, rec.Size-off)
	if int64(len(w.buf)) < n {
		return fmt.Errorf("staging buffer of %d bytes is smaller than chunk size %d: %w", len(w.buf), n, messages.ErrConfig)
	}
	if w.opts.Limiter != nil {
		if err := w.opts.Limiter.WaitN(ctx, int(n)); err != nil {
			return err
		}
	}
	h, end, err := w.m.LeaseRead(rec.ID, rec.Generation)
	if err != nil {
		return err
	}
	defer end()
	sum, err := w.hashWithRetry(h, rec.ID, off, n)
	if err != nil {
		return err
	}
	if sum != s.Chunks[i] {
		return &messages.IntegrityError{
			ShardID: rec.ID, Device: w.m.Index(), Reason: messages.ReasonDigestMismatch,
			Chunk: i, Offset: off, Length: n,
			Expected: hex.EncodeToString(s.Chunks[i][:]), Actual: hex.EncodeToString(sum[:]),
			Tensors: overlappingTensorNames(rec.Tensors, off, n),
		}
	}
	return nil
}

// hashWithRetry retries reads that fail with a copy error; a read that keeps
// failing is a device fault.
func (w *worker) hashWithRetry(h cuda.Handle, id string, off, n int64) (sealer.ChunkDigest, error) {
	var err error
	for range w.opts.ReadRetries + 1 {
		var sum sealer.ChunkDigest
		sum, err = w.hash(h, off, n)
		if err == nil || !errors.Is(err, cuda.ErrCopyFailed) {
			return sum, err
		}
	}
	return sealer.ChunkDigest{}, fmt.Errorf("shard %+q: read failed %d times: %w: %w", id, w.opts.ReadRetries+1, messages.ErrDeviceFault, err)
}

func (w *worker) hash(h cuda.Handle, off, n int64) (sealer.ChunkDigest, error) {
	if err := w.m.Device().Read(h, off, w.buf[:n]); err != nil {
		return sealer.ChunkDigest{}, fmt.Errorf("device %d: copy from device: %w", w.m.Index(), err)
	}
	return sealer.SumChunk(w.buf[:n]), nil
}

// overlappingTensorNames names the tensors of a shard's table that share a
// byte with [off, off+n).
func overlappingTensorNames(tensors []sealer.Tensor, off, n int64) []string {
	var names []string
	for _, t := range sealer.OverlappingTensors(tensors, off, off+n) {
		names = append(names, t.Name)
	}
	return names
}
