package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/vramseal/vramseal/actors"
	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/internal/staging"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// sealCall is one Seal in progress. It holds the runtime's gate (so that
// shutdown waits for it) only while it works on the device or the audit
// log, never while it waits for its reader; and a lease on its memory only
// while it copies or records.
type sealCall struct {
	r      *Runtime
	req    messages.SealRequest
	inside bool
	alloc  *actors.Allocation
	leased bool
	// reading is the goroutine reading ahead, if any. A seal that fails
	// frees its memory and records the failure before it waits for a
	// reader blocked in Read (see waitReader).
	reading sync.WaitGroup
}

// waitReader waits, outside the gate, for the goroutine reading ahead.
func (c *sealCall) waitReader() {
	c.leave()
	c.reading.Wait()
}

// leave lets go of the gate, if held.
func (c *sealCall) leave() {
	if c.inside {
		c.inside = false
		c.r.calls.leave()
	}
}

// outside runs wait with the gate let go, then takes it again; if the
// runtime began stopping meanwhile it returns ErrStopped.
func (c *sealCall) outside(wait func() error) error {
	c.leave()
	err := wait()
	if !c.r.calls.enter() {
		return messages.ErrStopped
	}
	c.inside = true
	return err
}

// lease takes a write lease on the seal's allocation.
func (c *sealCall) lease() error {
	if err := c.alloc.Lease(); err != nil {
		return err
	}
	c.leased = true
	return nil
}

// unlease ends the write lease, if held.
func (c *sealCall) unlease() {
	if c.leased {
		c.leased = false
		c.alloc.Unlease()
	}
}

// run seals the request: a small shard is read, hashed and signed, then
// placed (allocated, copied and committed in one GPU actor message); a shard
// of one chunk is read, then allocated and copied; a larger one is
// allocated, then streamed with the next chunk read while the current one
// is hashed and copied. It then signs, commits, and records the seal once
// the shard is live.
func (c *sealCall) run(ctx context.Context) (sealer.Shard, error) {
	r, req := c.r, c.req
	digester, err := sealer.NewDigester(r.cfg.ChunkSize)
	if err != nil {
		return sealer.Shard{}, err
	}
	gen := r.gens.next()
	if req.Size <= min(r.cfg.ChunkSize, actors.PlaceLimit) {
		return c.place(ctx, digester, gen)
	}
	if req.Size <= r.cfg.ChunkSize {
		err = c.sealOneChunk(ctx, digester, gen)
	} else {
		err = c.allocate(gen)
		if err == nil {
			c.unlease()
			err = c.stream(ctx, digester)
		}
		if err == nil {
			err = c.lease() // for the commit to take over
		}
	}
	if err != nil {
		return sealer.Shard{}, c.failed(ctx, err)
	}
	sums := digester.Digests()
	if err := checkModel(req, sums.Digest); err != nil {
		return sealer.Shard{}, c.failed(ctx, err)
	}
	shard, err := r.sign(req, gen, sums)
	if err != nil {
		return sealer.Shard{}, c.failed(ctx, err)
	}
	if err := c.alloc.Commit(shard, sums.Chunks); err != nil {
		return sealer.Shard{}, c.failed(ctx, err)
	}
	return c.recordSealed(ctx, shard)
}

// place seals a shard of at most actors.PlaceLimit bytes: it reads the
// data, hashes and signs it, and has the GPU actor allocate, copy and
// commit it in one message.
func (c *sealCall) place(ctx context.Context, d *sealer.Digester, gen uint64) (sealer.Shard, error) {
	r, req := c.r, c.req
	buf, err := c.readWhole(ctx)
	if err != nil {
		return sealer.Shard{}, c.failed(ctx, err)
	}
	// The actor has copied the data once Place returns, or has stopped.
	defer r.sealBuffers.Put(buf)
	d.Write(buf.Bytes)
	checkChunk(req, buf.Bytes)
	sums := d.Digests()
	if err := checkModel(req, sums.Digest); err != nil {
		return sealer.Shard{}, c.failed(ctx, err)
	}
	shard, err := r.sign(req, gen, sums)
	if err != nil {
		return sealer.Shard{}, c.failed(ctx, err)
	}
	alloc, err := r.gpus[req.Device].Place(shard, sums.Chunks, buf.Bytes)
	if err != nil {
		return sealer.Shard{}, c.failed(ctx, err)
	}
	c.alloc, c.leased = alloc, true
	return c.recordSealed(ctx, shard)
}

// recordSealed makes the VramSealed record of a shard just made live,
// under the seal's lease, and ends the lease: an eviction frees the shard
// only after its record, so the trail never shows a free before the seal.
// Once queued, the record is written whether or not the caller still
// waits; so the seal waits for it, lest the log say VramSealed of a shard
// that was then aborted.
func (c *sealCall) recordSealed(ctx context.Context, shard sealer.Shard) (sealer.Shard, error) {
	if err := c.r.record(context.WithoutCancel(ctx), audit.Record{Event: audit.EventVramSealed, Severity: audit.SeverityInfo, Fields: shardFields(shard)}); err != nil {
		return sealer.Shard{}, c.failed(ctx, err)
	}
	c.unlease()
	return shard, nil
}

// allocate reserves the seal's memory, with a write lease held.
func (c *sealCall) allocate(gen uint64) error {
	alloc, err := c.r.gpus[c.req.Device].Allocate(c.req.ID, gen, c.req.Size)
	if err != nil {
		return err
	}
	c.alloc, c.leased = alloc, true
	return nil
}

// readWhole reads the whole shard into one staging buffer, outside the
// gate. The buffer is the caller's to put back, on success only.
func (c *sealCall) readWhole(ctx context.Context) (*staging.Buffer, error) {
	var buf *staging.Buffer
	err := c.outside(func() error {
		var err error
		if buf, err = c.readStaged(ctx, c.req.Size, 0); err != nil {
			return err
		}
		return noMoreData(c.req)
	})
	if err != nil && buf != nil {
		c.r.sealBuffers.Put(buf)
		buf = nil
	}
	return buf, err
}

// sealOneChunk reads the whole shard, allocates and copies it.
func (c *sealCall) sealOneChunk(ctx context.Context, d *sealer.Digester, gen uint64) error {
	r, req := c.r, c.req
	buf, err := c.readWhole(ctx)
	if err != nil {
		return err
	}
	defer r.sealBuffers.Put(buf)
	d.Write(buf.Bytes)
	checkChunk(req, buf.Bytes)
	if err := c.allocate(gen); err != nil {
		return err
	}
	// The write lease is kept until the commit, which takes it over: the
	// data is in hand, so no reader can stall under it.
	if err := r.gpus[req.Device].Device().Write(c.alloc.Handle, 0, buf.Bytes); err != nil {
		return fmt.Errorf("device %d: copy to device: %w", req.Device, err)
	}
	return nil
}

// chunk is one chunk of a seal's data, read ahead.
type chunk struct {
	buf *staging.Buffer
	off int64
	err error
}

// stream copies the data to the device. A goroutine the call owns reads the
// next chunk while this one is hashed and copied, and the hashing runs on
// another beside the copy.
func (c *sealCall) stream(ctx context.Context, d *sealer.Digester) error {
	r, req := c.r, c.req
	readCtx, stopReading := context.WithCancel(ctx)
	chunks := make(chan chunk)
	c.reading.Go(func() {
		// A panic in the caller's reader fails this seal (readChunk); any
		// other panic here is ours, a software fault.
		if err := messages.CatchPanic("seal reader", func() { c.readAhead(readCtx, chunks) }); err != nil {
			select {
			case chunks <- chunk{err: err}:
			case <-readCtx.Done():
			}
		}
	})
	// The reader is told to stop, but waited for only once the seal has
	// freed its memory and recorded why (Seal calls waitReader).
	defer stopReading()
	g := r.gpus[req.Device]
	for {
		var ch chunk
		var more bool
		err := c.outside(func() error {
			select {
			case ch, more = <-chunks:
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-r.stopCtx.Done():
				return messages.ErrStopped
			}
		})
		if err == nil {
			err = ch.err
		}
		if err != nil || !more {
			if ch.buf != nil {
				r.sealBuffers.Put(ch.buf)
			}
			return err
		}
		// The chunk is hashed while it is copied: both only read it.
		var hashing sync.WaitGroup
		var hashErr error
		hashing.Go(func() {
			hashErr = messages.CatchPanic("seal hashing", func() {
				d.Write(ch.buf.Bytes)
				checkChunk(req, ch.buf.Bytes)
			})
		})
		err = c.lease()
		if err == nil {
			if err = g.Device().Write(c.alloc.Handle, ch.off, ch.buf.Bytes); err != nil {
				err = fmt.Errorf("device %d: copy to device: %w", req.Device, err)
			}
			c.unlease()
		}
		hashing.Wait()
		r.sealBuffers.Put(ch.buf)
		if hashErr != nil {
			err = hashErr
		}
		if err != nil {
			return err
		}
	}
}

// readAhead reads the data chunk by chunk into staging buffers and sends
// them; it closes out once the data ends where it should, or sends the
// error that ended it.
func (c *sealCall) readAhead(ctx context.Context, out chan<- chunk) {
	r, req := c.r, c.req
	send := func(ch chunk) bool {
		select {
		case out <- ch:
			return true
		case <-ctx.Done():
			if ch.buf != nil {
				r.sealBuffers.Put(ch.buf)
			}
			return false
		}
	}
	for off := int64(0); off < req.Size; {
		n := min(r.cfg.ChunkSize, req.Size-off)
		buf, err := c.readStaged(ctx, n, off)
		if err != nil {
			send(chunk{err: err})
			return
		}
		if !send(chunk{buf: buf, off: off}) {
			return
		}
		off += n
	}
	if err := noMoreData(req); err != nil {
		send(chunk{err: err})
		return
	}
	close(out)
}

// firstReadSize bounds the first read of each chunk, made before the chunk
// takes a staging buffer.
const firstReadSize = 4 << 10

// firstReads holds the buffers of first reads. A seal waiting in its reader
// for a chunk's first bytes holds one of these, not the staging budget.
var firstReads = sync.Pool{New: func() any { return new([firstReadSize]byte) }}

// readStaged reads the n bytes of req's data at offset off into a staging
// buffer. It takes the buffer only once the reader has given the chunk's
// first bytes, so that a reader that blocks before them (a hung network
// filesystem) holds none of the staging memory other seals need. The
// buffer goes back to the pool on every path but success.
func (c *sealCall) readStaged(ctx context.Context, n, off int64) (*staging.Buffer, error) {
	first := firstReads.Get().(*[firstReadSize]byte)
	defer firstReads.Put(first)
	got, err := readSome(c.req, first[:min(n, firstReadSize)], off)
	if err != nil {
		return nil, err
	}
	buf, err := c.r.sealBuffers.Get(ctx, n)
	if err != nil {
		return nil, err
	}
	filled := false
	defer func() { // also as a panic unwinds
		if !filled {
			c.r.sealBuffers.Put(buf)
		}
	}()
	copy(buf.Bytes, first[:got])
	if c.r.cfg.hooks.staged != nil {
		c.r.cfg.hooks.staged()
	}
	if err := readChunk(c.req, buf.Bytes[got:], off+int64(got)); err != nil {
		return nil, err
	}
	filled = true
	return buf, nil
}

// readSome reads at least one byte of req's data at offset off into p.
func readSome(req messages.SealRequest, p []byte, off int64) (n int, err error) {
	defer recoverReader(&err)
	if n, err = io.ReadAtLeast(req.Data, p, 1); err != nil {
		return 0, fmt.Errorf("%w: data ended after %d of %d bytes: %v", messages.ErrInvalidInput, off, req.Size, err)
	}
	return n, nil
}

// readChunk fills p, the part of req's data at offset off. A panic in the
// caller's reader fails the seal as invalid input; it is not vramseal's.
func readChunk(req messages.SealRequest, p []byte, off int64) (err error) {
	defer recoverReader(&err)
	if n, err := io.ReadFull(req.Data, p); err != nil {
		return fmt.Errorf("%w: data ended after %d of %d bytes: %v", messages.ErrInvalidInput, off+int64(n), req.Size, err)
	}
	return nil
}

// recoverReader turns a panic in the caller's reader into *err.
func recoverReader(err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("%w: the data's reader panicked: %v", messages.ErrInvalidInput, p)
	}
}

// noMoreData checks that req's data ends at its size.
func noMoreData(req messages.SealRequest) (err error) {
	defer recoverReader(&err)
	var extra [1]byte
	if n, _ := req.Data.Read(extra[:]); n > 0 {
		return fmt.Errorf("%w: data is longer than size %d", messages.ErrInvalidInput, req.Size)
	}
	return nil
}

// failed ends a seal that will not complete: it frees the allocation, if
// any, fail-stops on a device fault and records one failure with the real
// reason. A seal whose memory an eviction or a stop took back was recorded
// by it, and one that outlived the runtime records nothing.
func (c *sealCall) failed(ctx context.Context, err error) error {
	c.unlease()
	r, req := c.r, c.req
	if errors.Is(err, messages.ErrRevoked) || !c.inside {
		return err
	}
	if c.alloc != nil {
		if abortErr := c.alloc.Abort(); abortErr != nil {
			if errors.Is(abortErr, messages.ErrRevoked) || errors.Is(abortErr, messages.ErrStopped) {
				return err
			}
			err = errors.Join(err, abortErr)
		}
	}
	if messages.IsFatal(err) {
		r.fail(fmt.Errorf("seal %q on device %d: %w", req.ID, req.Device, err))
	}
	if ctx.Err() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	rec := sealFailedRecord(req.ID, req.Device, req.Size, failureReason(err), err.Error())
	if errors.Is(err, messages.ErrModelRejected) {
		rec = modelRejectedRecord(req, err)
	}
	if recErr := r.record(ctx, rec); recErr != nil {
		return errors.Join(err, recErr)
	}
	return err
}
