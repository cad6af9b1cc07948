package stress

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/internal/staging"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// BaselineConfig configures a Baseline.
type BaselineConfig struct {
	// Devices are the GPUs; the Baseline owns them and Close closes them.
	Devices []cuda.Device
	// Key signs shard records.
	Key *sealer.Key
	// ChunkSize is the unit of copying and hashing; zero means 4 MiB.
	ChunkSize int64
	// Audit, if set, receives the same records the runtime makes for a
	// seal, a verify and a release.
	Audit audit.Sink
}

// Baseline seals, verifies and releases with the same sealer and device
// calls as the runtime, but with no actors: one mutex per device, held for
// the whole of each operation (seal: allocate, copy and hash every chunk;
// verify: read and hash every chunk). It is the design a user would
// otherwise pick, and what `vramseal bench` measures the runtime against.
type Baseline struct {
	cfg     BaselineConfig
	devices []*baselineDevice
	buffers *staging.Pool
}

// baselineDevice is one device, its lock and its table.
type baselineDevice struct {
	mu     sync.Mutex
	dev    cuda.Device
	shards map[string]baselineShard
}

type baselineShard struct {
	record sealer.Shard
	chunks []sealer.ChunkDigest
	handle cuda.Handle
}

// NewBaseline returns a Baseline over cfg.Devices.
func NewBaseline(cfg BaselineConfig) (*Baseline, error) {
	if len(cfg.Devices) == 0 || cfg.Key == nil {
		return nil, fmt.Errorf("%w: baseline needs devices and a key", messages.ErrConfig)
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = sealer.DefaultChunkSize
	}
	if err := sealer.ValidateChunkSize(cfg.ChunkSize); err != nil {
		return nil, fmt.Errorf("%w: %w", messages.ErrConfig, err)
	}
	// Buffers are taken under a device's lock, so one per device suffices.
	b := &Baseline{cfg: cfg, buffers: staging.NewPool(cfg.ChunkSize, int64(len(cfg.Devices))*cfg.ChunkSize)}
	for _, d := range cfg.Devices {
		b.devices = append(b.devices, &baselineDevice{dev: d, shards: map[string]baselineShard{}})
	}
	return b, nil
}

// Seal copies req.Size bytes of req.Data onto device req.Device under its
// lock, hashing each chunk, and returns the signed record.
func (b *Baseline) Seal(ctx context.Context, req messages.SealRequest) (sealer.Shard, error) {
	if err := b.validate(req); err != nil {
		return sealer.Shard{}, fmt.Errorf("baseline seal: %w", err)
	}
	d := b.devices[req.Device]
	d.mu.Lock()
	shard, chunks, h, err := b.sealLocked(d, req)
	if err == nil {
		d.shards[req.ID] = baselineShard{record: shard, chunks: chunks, handle: h}
	}
	d.mu.Unlock()
	if err != nil {
		return sealer.Shard{}, fmt.Errorf("baseline seal %q: %w", req.ID, err)
	}
	return shard, b.record(ctx, audit.EventVramSealed, shard, "")
}

func (b *Baseline) validate(req messages.SealRequest) error {
	if err := sealer.ValidateDevice(req.Device, len(b.devices)); err != nil {
		return err
	}
	if err := sealer.ValidateSize(req.Size, 0); err != nil {
		return err
	}
	if req.Data == nil {
		return fmt.Errorf("%w: no data", messages.ErrInvalidInput)
	}
	return sealer.ValidateShardID(req.ID)
}

// sealLocked allocates, copies and hashes; d.mu must be held.
func (b *Baseline) sealLocked(d *baselineDevice, req messages.SealRequest) (sealer.Shard, []sealer.ChunkDigest, cuda.Handle, error) {
	if _, ok := d.shards[req.ID]; ok {
		return sealer.Shard{}, nil, 0, fmt.Errorf("%w", messages.ErrDuplicateShard)
	}
	free, _, err := d.dev.MemInfo()
	if err != nil {
		return sealer.Shard{}, nil, 0, err
	}
	if req.Size > free {
		return sealer.Shard{}, nil, 0, &messages.InsufficientVRAMError{Device: req.Device, Needed: req.Size, Available: free}
	}
	h, err := d.dev.Allocate(req.Size)
	if err != nil {
		return sealer.Shard{}, nil, 0, err
	}
	shard, chunks, err := b.copyAndHash(d.dev, h, req)
	if err != nil {
		return sealer.Shard{}, nil, 0, errors.Join(err, d.dev.Free(h))
	}
	return shard, chunks, h, nil
}

func (b *Baseline) copyAndHash(dev cuda.Device, h cuda.Handle, req messages.SealRequest) (sealer.Shard, []sealer.ChunkDigest, error) {
	digester, err := sealer.NewDigester(b.cfg.ChunkSize)
	if err != nil {
		return sealer.Shard{}, nil, err
	}
	buf, err := b.buffers.Get(context.Background(), min(b.cfg.ChunkSize, req.Size))
	if err != nil {
		return sealer.Shard{}, nil, err
	}
	defer b.buffers.Put(buf)
	for off := int64(0); off < req.Size; {
		chunk := buf.Bytes[:min(b.cfg.ChunkSize, req.Size-off)]
		if _, err := io.ReadFull(req.Data, chunk); err != nil {
			return sealer.Shard{}, nil, fmt.Errorf("%w: data ended after %d of %d bytes", messages.ErrInvalidInput, off, req.Size)
		}
		digester.Write(chunk)
		if err := dev.Write(h, off, chunk); err != nil {
			return sealer.Shard{}, nil, err
		}
		off += int64(len(chunk))
	}
	sums := digester.Digests()
	shard := sealer.Shard{
		ID: req.ID, Device: req.Device, Size: req.Size, Digest: sums.Digest,
		ChunkSize: b.cfg.ChunkSize, ChunkRoot: sums.ChunkRoot, SealedAt: time.Now().UTC(),
		ModelRef: req.ModelRef, ShardIndex: req.ShardIndex, TotalShards: req.TotalShards,
	}
	if err := sealer.Sign(b.cfg.Key, &shard); err != nil {
		return sealer.Shard{}, nil, err
	}
	return shard, sums.Chunks, nil
}

// Verify checks the record's signature and re-hashes every chunk under the
// device's lock. A mismatch returns an *messages.IntegrityError.
func (b *Baseline) Verify(ctx context.Context, shard sealer.Shard) error {
	if err := sealer.CheckSignature(b.cfg.Key, &shard); err != nil {
		return fmt.Errorf("baseline verify: %w", err)
	}
	if err := sealer.ValidateDevice(shard.Device, len(b.devices)); err != nil {
		return fmt.Errorf("baseline verify: %w", err)
	}
	d := b.devices[shard.Device]
	d.mu.Lock()
	err := b.verifyLocked(d, shard)
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("baseline verify: %w", err)
	}
	return b.record(ctx, audit.EventSealVerified, shard, "verify")
}

// verifyLocked reads and hashes every chunk; d.mu must be held.
func (b *Baseline) verifyLocked(d *baselineDevice, shard sealer.Shard) error {
	s, ok := d.shards[shard.ID]
	if !ok {
		return fmt.Errorf("shard %q: %w", shard.ID, messages.ErrUnknownShard)
	}
	if !s.record.Equal(shard) {
		return &messages.IntegrityError{ShardID: shard.ID, Device: shard.Device, Reason: messages.ReasonRecordMismatch}
	}
	buf, err := b.buffers.Get(context.Background(), min(shard.ChunkSize, shard.Size))
	if err != nil {
		return err
	}
	defer b.buffers.Put(buf)
	for i, want := range s.chunks {
		off := int64(i) * shard.ChunkSize
		chunk := buf.Bytes[:min(shard.ChunkSize, shard.Size-off)]
		if err := d.dev.Read(s.handle, off, chunk); err != nil {
			return err
		}
		if got := sealer.SumChunk(chunk); got != want {
			return &messages.IntegrityError{
				ShardID: shard.ID, Device: shard.Device, Reason: messages.ReasonDigestMismatch,
				Chunk: int64(i), Offset: off, Length: int64(len(chunk)),
				Expected: hex.EncodeToString(want[:]), Actual: hex.EncodeToString(got[:]),
			}
		}
	}
	return nil
}

// Release frees a shard's memory.
func (b *Baseline) Release(ctx context.Context, shard sealer.Shard) error {
	if err := sealer.CheckSignature(b.cfg.Key, &shard); err != nil {
		return fmt.Errorf("baseline release: %w", err)
	}
	if err := sealer.ValidateDevice(shard.Device, len(b.devices)); err != nil {
		return fmt.Errorf("baseline release: %w", err)
	}
	d := b.devices[shard.Device]
	d.mu.Lock()
	s, ok := d.shards[shard.ID]
	var err error
	switch {
	case !ok:
		err = fmt.Errorf("shard %q: %w", shard.ID, messages.ErrUnknownShard)
	case !s.record.Equal(shard):
		err = &messages.IntegrityError{ShardID: shard.ID, Device: shard.Device, Reason: messages.ReasonRecordMismatch}
	default:
		delete(d.shards, shard.ID)
		err = d.dev.Free(s.handle)
	}
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("baseline release: %w", err)
	}
	return b.record(ctx, audit.EventVramDeallocated, shard, "release")
}

// Close frees every shard and closes the devices.
func (b *Baseline) Close() error {
	var errs []error
	for _, d := range b.devices {
		d.mu.Lock()
		for id, s := range d.shards {
			errs = append(errs, d.dev.Free(s.handle))
			delete(d.shards, id)
		}
		errs = append(errs, d.dev.Close())
		d.mu.Unlock()
	}
	return errors.Join(errs...)
}

// record sends the record the runtime would make, if there is a sink.
func (b *Baseline) record(ctx context.Context, event string, s sealer.Shard, source string) error {
	if b.cfg.Audit == nil {
		return nil
	}
	fields := map[string]any{"shard_id": s.ID, "device": s.Device, "size": s.Size, "digest": s.Digest}
	if source != "" {
		fields["source"] = source
	}
	return b.cfg.Audit.Record(ctx, audit.Record{Event: event, Severity: audit.SeverityInfo, Fields: fields})
}
