package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// GPUConfig configures one GPU actor.
type GPUConfig struct {
	// Index is the device's index in the runtime.
	Index int
	// Device is the memory the actor owns. Nothing else may touch it while
	// the actor lives.
	Device cuda.Device
	// Headroom is the memory, in bytes, that seals must leave free.
	Headroom int64
	// Logger receives the actor's log lines.
	Logger *slog.Logger
	// OnMessage, if set, sees every request before the actor handles it.
	// It is a test hook: a panic in it is a panic in the actor.
	OnMessage func(msg any)
}

// entry is one sealed shard in the allocation table.
type entry struct {
	view   ShardView
	handle cuda.Handle
}

// pendingSeal is memory allocated for a seal that has not committed yet.
type pendingSeal struct {
	handle cuda.Handle
	size   int64
}

// gpuActor owns one device: its allocation table, its accounting, and every
// allocation, copy and free on it.
type gpuActor struct {
	cfg     GPUConfig
	ref     *GPURef
	shards  map[string]*entry
	pending map[string]*pendingSeal
	held    int64 // bytes of sealed shards
	staged  int64 // bytes of pending seals
	nextGen uint64
}

func newGPUActor(cfg GPUConfig, ref *GPURef) *gpuActor {
	return &gpuActor{cfg: cfg, ref: ref, shards: map[string]*entry{}, pending: map[string]*pendingSeal{}}
}

// Receive handles one message.
func (a *gpuActor) Receive(c actor.Context) {
	msg := c.Message()
	if req, ok := msg.(gpuRequest); ok && a.cfg.OnMessage != nil {
		a.cfg.OnMessage(req)
	}
	switch m := msg.(type) {
	case *allocate:
		m.reply <- a.allocate(m.id, m.size, m.first)
	case *write:
		m.reply <- a.write(m)
	case *commit:
		m.reply <- a.commit(m)
	case *abort:
		m.reply <- a.abort(m.id)
	case *read:
		m.reply <- a.read(m)
	case *lookup:
		e, ok := a.shards[m.id]
		if !ok {
			m.reply <- lookupReply{err: unknownShard(m.id)}
			return
		}
		m.reply <- lookupReply{view: e.view}
	case *release:
		m.reply <- a.release(m.id)
	case *capacityQuery:
		m.reply <- a.capacity()
	case *snapshot:
		m.reply <- a.snapshot()
	case *markVerified:
		if e, ok := a.shards[m.id]; ok && e.view.Gen == m.gen && m.at.After(e.view.LastVerified) {
			e.view.LastVerified = m.at
		}
	case *drain:
		freed, err := a.freeAll()
		m.reply <- drainReply{freed: freed, err: err}
	case *actor.Stopping:
		// After a graceful drain the table is empty; after a panic this is
		// the last chance to free what the table still names.
		freed, err := a.freeAll()
		if err != nil {
			a.cfg.Logger.Error("freeing device memory on stop", "device", a.cfg.Index, "err", err)
		}
		a.ref.leftover = freed
	case *actor.Stopped:
		close(a.ref.stopped)
	}
}

func (a *gpuActor) allocate(id string, size int64, first []byte) error {
	if _, ok := a.shards[id]; ok {
		return fmt.Errorf("shard %q: %w", id, messages.ErrDuplicateShard)
	}
	if _, ok := a.pending[id]; ok {
		return fmt.Errorf("shard %q: %w", id, messages.ErrDuplicateShard)
	}
	free, _, err := a.cfg.Device.MemInfo()
	if err != nil {
		return fmt.Errorf("device %d: memory info: %w", a.cfg.Index, err)
	}
	available := max(free-a.cfg.Headroom, 0)
	if size > available {
		return &messages.InsufficientVRAMError{Device: a.cfg.Index, Needed: size, Available: available}
	}
	h, err := a.cfg.Device.Allocate(size)
	if errors.Is(err, messages.ErrInsufficientVRAM) {
		return &messages.InsufficientVRAMError{Device: a.cfg.Index, Needed: size, Available: available}
	}
	if err != nil {
		return fmt.Errorf("device %d: allocate %d bytes: %w", a.cfg.Index, size, err)
	}
	if len(first) > 0 {
		if err := a.cfg.Device.Write(h, 0, first); err != nil {
			return errors.Join(fmt.Errorf("device %d: copy to device: %w", a.cfg.Index, err), a.cfg.Device.Free(h))
		}
	}
	a.pending[id] = &pendingSeal{handle: h, size: size}
	a.staged += size
	return nil
}

func (a *gpuActor) write(m *write) error {
	p, ok := a.pending[m.id]
	if !ok {
		return fmt.Errorf("write to shard %q: no seal in progress: %w", m.id, messages.ErrUnknownShard)
	}
	if err := a.cfg.Device.Write(p.handle, m.offset, m.data); err != nil {
		return fmt.Errorf("device %d: copy to device: %w", a.cfg.Index, err)
	}
	return nil
}

func (a *gpuActor) commit(m *commit) error {
	id := m.record.ID
	p, ok := a.pending[id]
	if !ok {
		return fmt.Errorf("commit shard %q: no seal in progress: %w", id, messages.ErrUnknownShard)
	}
	if p.size != m.record.Size {
		return fmt.Errorf("commit shard %q: record size %d, allocated %d: %w", id, m.record.Size, p.size, messages.ErrInvalidInput)
	}
	delete(a.pending, id)
	a.staged -= p.size
	a.nextGen++
	a.shards[id] = &entry{handle: p.handle, view: ShardView{Record: m.record, Chunks: m.chunks, Gen: a.nextGen}}
	a.held += p.size
	return nil
}

func (a *gpuActor) abort(id string) error {
	p, ok := a.pending[id]
	if !ok {
		return fmt.Errorf("abort shard %q: no seal in progress: %w", id, messages.ErrUnknownShard)
	}
	delete(a.pending, id)
	a.staged -= p.size
	if err := a.cfg.Device.Free(p.handle); err != nil {
		return fmt.Errorf("device %d: free: %w", a.cfg.Index, err)
	}
	return nil
}

func (a *gpuActor) read(m *read) error {
	e, ok := a.shards[m.id]
	if !ok || e.view.Gen != m.gen {
		return unknownShard(m.id)
	}
	if err := a.cfg.Device.Read(e.handle, m.offset, m.buf); err != nil {
		return fmt.Errorf("device %d: copy from device: %w", a.cfg.Index, err)
	}
	return nil
}

func (a *gpuActor) release(id string) error {
	e, ok := a.shards[id]
	if !ok {
		return unknownShard(id)
	}
	delete(a.shards, id)
	a.held -= e.view.Record.Size
	if err := a.cfg.Device.Free(e.handle); err != nil {
		return fmt.Errorf("device %d: free: %w", a.cfg.Index, err)
	}
	return nil
}

func (a *gpuActor) capacity() messages.Capacity {
	c := messages.Capacity{
		Device:   a.cfg.Index,
		Held:     a.held + a.staged,
		Pending:  a.staged,
		Headroom: a.cfg.Headroom,
		Shards:   len(a.shards),
	}
	free, total, err := a.cfg.Device.MemInfo()
	if err != nil {
		// A lost device still reports what we hold; its memory is unknown.
		return c
	}
	c.Free, c.Total = free, total
	return c
}

func (a *gpuActor) snapshot() []ShardView {
	views := make([]ShardView, 0, len(a.shards))
	for _, e := range a.shards {
		views = append(views, e.view)
	}
	slices.SortFunc(views, func(x, y ShardView) int { return strings.Compare(x.Record.ID, y.Record.ID) })
	return views
}

// freeAll frees every shard and pending seal, returning the shards freed.
// It goes on past errors so that one bad free does not leak the rest.
func (a *gpuActor) freeAll() ([]sealer.Shard, error) {
	var errs []error
	freed := make([]sealer.Shard, 0, len(a.shards))
	for _, v := range a.snapshot() {
		if err := a.release(v.Record.ID); err != nil {
			errs = append(errs, err)
		}
		freed = append(freed, v.Record)
	}
	for id := range a.pending {
		if err := a.abort(id); err != nil {
			errs = append(errs, err)
		}
	}
	return freed, errors.Join(errs...)
}

func unknownShard(id string) error {
	return fmt.Errorf("shard %q: %w", id, messages.ErrUnknownShard)
}
