package supervisor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// Seal copies req.Size bytes from req.Data onto device req.Device, hashes
// them, signs the shard record, makes the shard live and its VramSealed
// audit record durable; only then does it return the record. It fails
// fast, before any device work, with ErrInvalidInput or ErrDuplicateShard;
// with ErrInsufficientVRAM (retriable) when the device lacks memory. A seal
// that fails part-way frees its memory and leaves no shard and one failure
// record. A Data that blocks delays neither Stop nor a fail-stop (Seal then
// returns ErrStopped), nor the end of ctx (the seal is freed and recorded
// at once); Seal itself returns once Data's Read returns.
func (r *Runtime) Seal(ctx context.Context, req SealRequest) (Shard, error) {
	if err := r.enter(); err != nil {
		return sealer.Shard{}, err
	}
	c := &sealCall{r: r, inside: true}
	defer c.leave()
	if err := r.validate(&req); err != nil {
		return sealer.Shard{}, fmt.Errorf("seal: %w", err)
	}
	if err := r.ids.claim(req.ID); err != nil {
		return sealer.Shard{}, fmt.Errorf("seal: %w", err)
	}
	c.req = req
	shard, err := c.run(ctx)
	if err != nil {
		r.ids.drop(req.ID)
	}
	// Its memory, ID and failure record are settled: now wait for a reader
	// still blocked in Read.
	c.waitReader()
	if err != nil {
		return sealer.Shard{}, fmt.Errorf("seal %q: %w", req.ID, err)
	}
	shard.Tensors = sealer.CloneTensors(shard.Tensors) // the caller's copy, not the live record's
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
	// The runtime keeps its own copy: the caller's slice (and its Shapes)
	// may change after Seal, which must not alter the signed record.
	req.Tensors = sealer.CloneTensors(req.Tensors)
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

// sign makes the signed record of a shard whose data hashed to sums.
func (r *Runtime) sign(req messages.SealRequest, gen uint64, sums sealer.Digests) (sealer.Shard, error) {
	shard := sealer.Shard{
		ID: req.ID, Device: req.Device, Size: req.Size,
		Digest: sums.Digest, ChunkSize: r.cfg.ChunkSize, ChunkRoot: sums.ChunkRoot,
		SealedAt: r.cfg.Now().UTC(), ModelRef: req.ModelRef,
		ShardIndex: req.ShardIndex, TotalShards: req.TotalShards, Tensors: req.Tensors, Generation: gen,
	}
	if err := sealer.Sign(r.cfg.Key, &shard); err != nil {
		return sealer.Shard{}, err
	}
	return shard, nil
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
		{messages.ErrEvicted, "evicted"},
		{messages.ErrStopped, "stopped"},
		{context.Canceled, "cancelled"},
		{context.DeadlineExceeded, "deadline_exceeded"},
		{errAudit, "audit_failed"},
		{messages.ErrDeviceFault, "device_fault"},
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
		"shard_index": s.ShardIndex, "total_shards": s.TotalShards, "generation": s.Generation,
	}
}
