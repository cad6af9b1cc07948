package supervisor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/vramseal/vramseal/actors"
	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// Seal copies req.Size bytes from req.Data onto device req.Device, hashes
// them, signs the shard record and makes its VramSealed audit record durable;
// only then does it return the record. A seal that fails part-way frees its
// memory and leaves no shard.
func (r *Runtime) Seal(ctx context.Context, req messages.SealRequest) (sealer.Shard, error) {
	if err := r.enter(); err != nil {
		return sealer.Shard{}, err
	}
	defer r.calls.leave()
	if err := r.validate(&req); err != nil {
		return sealer.Shard{}, fmt.Errorf("seal: %w", err)
	}
	if err := r.ids.claim(req.ID); err != nil {
		return sealer.Shard{}, fmt.Errorf("seal: %w", err)
	}
	shard, err := r.seal(ctx, req)
	if err != nil {
		r.ids.drop(req.ID)
		return sealer.Shard{}, fmt.Errorf("seal %q: %w", req.ID, err)
	}
	return shard, nil
}

// validate checks a request in the caller's goroutine, before any device
// work, and gives it an ID if it has none.
func (r *Runtime) validate(req *messages.SealRequest) error {
	if err := sealer.ValidateDevice(req.Device, len(r.gpus)); err != nil {
		return err
	}
	if err := sealer.ValidateSize(req.Size, r.cfg.MaxModelSize); err != nil {
		return err
	}
	if req.Data == nil {
		return fmt.Errorf("%w: no data", messages.ErrInvalidInput)
	}
	if err := sealer.ValidateModelRef(req.ModelRef); err != nil {
		return err
	}
	if err := sealer.ValidatePlacement(req.ShardIndex, req.TotalShards); err != nil {
		return err
	}
	if err := sealer.ValidateTensors(req.Tensors, req.Size); err != nil {
		return err
	}
	if req.ID == "" {
		req.ID = newShardID()
	}
	return sealer.ValidateShardID(req.ID)
}

// newShardID returns an opaque, random shard ID.
func newShardID() string {
	var b [12]byte
	rand.Read(b[:])
	return "shard-" + hex.EncodeToString(b[:])
}

// seal stages, places and commits one validated request.
func (r *Runtime) seal(ctx context.Context, req messages.SealRequest) (sealer.Shard, error) {
	buf, err := r.buffers.Get(ctx, min(r.cfg.ChunkSize, req.Size))
	if err != nil {
		return sealer.Shard{}, r.sealFailed(ctx, req, err)
	}
	defer r.buffers.Put(buf)
	digester, err := sealer.NewDigester(r.cfg.ChunkSize)
	if err != nil {
		return sealer.Shard{}, err
	}
	g := r.gpus[req.Device]
	// A shard of one chunk is read and hashed first, then allocated and
	// copied in one step; a larger one reserves its memory before streaming.
	var first []byte
	if req.Size <= r.cfg.ChunkSize {
		if err := readChunk(req, buf.Bytes, 0); err != nil {
			return sealer.Shard{}, r.sealFailed(ctx, req, err)
		}
		digester.Write(buf.Bytes)
		checkChunk(req, buf.Bytes)
		first = buf.Bytes
	}
	if err := g.Allocate(req.ID, req.Size, first); err != nil {
		return sealer.Shard{}, r.sealFailed(ctx, req, err)
	}
	var shard sealer.Shard
	var sums sealer.Digests
	err = r.stream(ctx, g, req, buf, digester, int64(len(first)))
	if err == nil {
		sums = digester.Digests()
		err = checkModel(req, sums.Digest)
	}
	if err == nil {
		shard, err = r.sign(req, sums)
	}
	if err == nil {
		// Once queued, the record is written whether or not the caller still
		// waits; so the seal waits for it unless the runtime stops, lest the
		// log say VramSealed of a shard that was then aborted.
		err = r.record(r.stopCtx, audit.Record{Event: audit.EventVramSealed, Severity: audit.SeverityInfo, Fields: shardFields(shard)})
	}
	if err == nil {
		err = g.Commit(shard, sums.Chunks)
	}
	if err != nil {
		if abortErr := g.Abort(req.ID); abortErr != nil && !errors.Is(abortErr, messages.ErrStopped) {
			err = errors.Join(err, abortErr)
		}
		return sealer.Shard{}, r.sealFailed(ctx, req, err)
	}
	return shard, nil
}

// stream copies the data from offset from on to the device, chunk by chunk
// through one staging buffer, hashing as it goes, and checks that the data
// ends at the request's size.
func (r *Runtime) stream(ctx context.Context, g *actors.GPURef, req messages.SealRequest, buf *actors.Buffer, d *sealer.Digester, from int64) error {
	for off := from; off < req.Size; {
		if err := r.interrupted(ctx); err != nil {
			return err
		}
		chunk := buf.Bytes[:min(r.cfg.ChunkSize, req.Size-off)]
		if err := readChunk(req, chunk, off); err != nil {
			return err
		}
		d.Write(chunk)
		checkChunk(req, chunk)
		if err := g.Write(req.ID, off, chunk); err != nil {
			return err
		}
		off += int64(len(chunk))
	}
	var extra [1]byte
	if n, _ := req.Data.Read(extra[:]); n > 0 {
		return fmt.Errorf("%w: data is longer than size %d", messages.ErrInvalidInput, req.Size)
	}
	return nil
}

// readChunk fills chunk, the part of req's data at offset off.
func readChunk(req messages.SealRequest, chunk []byte, off int64) error {
	if n, err := io.ReadFull(req.Data, chunk); err != nil {
		return fmt.Errorf("%w: data ended after %d of %d bytes: %v", messages.ErrInvalidInput, off+int64(n), req.Size, err)
	}
	return nil
}

// sign makes the signed record of a shard whose data hashed to sums.
func (r *Runtime) sign(req messages.SealRequest, sums sealer.Digests) (sealer.Shard, error) {
	shard := sealer.Shard{
		ID: req.ID, Device: req.Device, Size: req.Size,
		Digest: sums.Digest, ChunkSize: r.cfg.ChunkSize, ChunkRoot: sums.ChunkRoot,
		SealedAt: r.cfg.Now().UTC(), ModelRef: req.ModelRef,
		ShardIndex: req.ShardIndex, TotalShards: req.TotalShards, Tensors: req.Tensors,
	}
	if err := sealer.Sign(r.cfg.Key, &shard); err != nil {
		return sealer.Shard{}, err
	}
	return shard, nil
}

// interrupted says why a seal must end early: the caller gave up, or the
// runtime is stopping.
func (r *Runtime) interrupted(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-r.stopCtx.Done():
		return messages.ErrStopped
	default:
		return nil
	}
}

// sealFailed records a failed seal, fail-stops on a device fault, and
// returns the error to give the caller.
func (r *Runtime) sealFailed(ctx context.Context, req messages.SealRequest, err error) error {
	if messages.IsFatal(err) {
		r.fail(fmt.Errorf("seal %q on device %d: %w", req.ID, req.Device, err))
	}
	rec := audit.Record{Event: audit.EventVramAllocationFailed, Severity: audit.SeverityWarning, Fields: map[string]any{
		"shard_id": req.ID, "device": req.Device, "size": req.Size, "reason": failureReason(err), "error": err.Error(),
	}}
	if errors.Is(err, messages.ErrModelRejected) {
		rec = modelRejectedRecord(req, err)
	}
	if ctx.Err() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	if recErr := r.record(ctx, rec); recErr != nil {
		return errors.Join(err, recErr)
	}
	return err
}

// failureReason names the kind of a seal failure for the audit record.
func failureReason(err error) string {
	var reasons = []struct {
		target error
		name   string
	}{
		{messages.ErrInsufficientVRAM, "insufficient_vram"},
		{messages.ErrAllocationFailed, "allocation_failed"},
		{messages.ErrDuplicateShard, "duplicate_shard"},
		{messages.ErrInvalidInput, "invalid_input"},
		{messages.ErrModelRejected, "model_rejected"},
		{messages.ErrStopped, "stopped"},
		{context.Canceled, "cancelled"},
		{context.DeadlineExceeded, "deadline_exceeded"},
		{messages.ErrDeviceFault, "device_fault"},
		{errAudit, "audit_failed"},
	}
	for _, r := range reasons {
		if errors.Is(err, r.target) {
			return r.name
		}
	}
	return "copy_failed"
}

// shardFields are a shard record's audit fields.
func shardFields(s sealer.Shard) map[string]any {
	return map[string]any{
		"shard_id": s.ID, "device": s.Device, "size": s.Size, "digest": s.Digest,
		"chunk_size": s.ChunkSize, "chunk_root": s.ChunkRoot, "model_ref": s.ModelRef,
		"shard_index": s.ShardIndex, "total_shards": s.TotalShards,
	}
}
