package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/internal/rehash"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// GPUConfig configures one GPU actor.
type GPUConfig struct {
	// Index is the device's index in the runtime.
	Index int
	// Device is the memory the actor owns. Only the actor allocates and
	// frees on it; others copy through it under the leases it grants.
	Device cuda.Device
	// Headroom is the memory, in bytes, that seals must leave free.
	Headroom int64
	// Logger receives the actor's log lines.
	Logger *slog.Logger
	// OnOrphan, if set, is called from the actor (so it must not block)
	// each time it frees an allocation whose drain no longer waits: the
	// orphan is then TakeOrphans's to hand over, for recording.
	OnOrphan func()
	// OnMessage, if set, sees every request before the actor handles it.
	// It is a test hook: a panic in it is a panic in the actor.
	OnMessage func(msg any)
	// OnAcquire, if set, runs in Acquire after the lease is taken and
	// before it is registered for revocation: a test hook for the window
	// a drain may race into.
	OnAcquire func()
}

// gpuActor owns one device's allocation table: what is allocated, sealed,
// leased and freed. It alone allocates and frees; it never copies data.
type gpuActor struct {
	cfg GPUConfig
	// live is the table's live shards, which the actor alone writes and
	// its GPURef reads.
	live *liveIndex
	// stopReply takes the actor's answer to its stop.
	stopReply chan<- stopReport
	// mailbox is the goroutine the actor runs on, which its last turn lets
	// end.
	mailbox *ownGoroutine
	t       *table
}

// Receive handles one message.
func (a *gpuActor) Receive(c actor.Context) {
	msg := c.Message()
	if req, ok := msg.(gpuMessage); ok && a.cfg.OnMessage != nil {
		a.cfg.OnMessage(req)
	}
	switch m := msg.(type) {
	case *actor.Started:
		if a.t == nil {
			a.t = newTable(a.live)
		}
	case *allocate:
		m.reply <- a.allocate(m)
	case *place:
		m.reply <- a.place(m)
	case *leasesEnded:
		if _, doomed := a.t.doomed[m.e]; doomed && m.e.pins.held() == 0 {
			a.free(m.e)
		}
	case *commit:
		m.reply <- a.commit(m)
	case *abort:
		m.reply <- a.abort(m.e)
	case *release:
		e, err := checkEntry(a.t.live.get(m.record.ID), m.record, a.cfg.Index)
		if err != nil {
			m.waiter.err = err
			a.reply(m.waiter)
			return
		}
		m.waiter.undoom = true
		m.waiter.left = 1
		a.doom(e, m.waiter, nil, false)
	case *drain:
		a.drain(m)
	case *withdraw:
		m.reply <- a.withdraw(m.waiter)
	case *takeOrphans:
		orphans := a.t.orphans
		a.t.orphans = nil
		m.reply <- orphans
	case *capacityQuery:
		m.reply <- a.capacity()
	case *snapshot:
		m.reply <- a.snapshot()
	case *markVerified:
		if e := a.t.live.get(m.id); e != nil && e.gen == m.gen && m.at.After(e.lastVerified) {
			e.lastVerified = m.at
		}
	case *actor.Stopping:
		// After a graceful drain the table is empty; after a panic this is
		// the last chance to free what it still names. Memory under a
		// lease is never freed, not even now: no lease can end once the
		// actor is gone, so it stays allocated until the process exits.
		freed, leased := a.freeEverything()
		a.stopReply <- stopReport{freed: freed, leased: leased}
	case *actor.Stopped:
		a.mailbox.close()
	}
}

func (a *gpuActor) allocate(m *allocate) leaseReply {
	e, err := a.reserve(m.id, m.gen, m.size)
	if err != nil {
		return leaseReply{err: err}
	}
	e.pins.take() // the seal's write lease
	return leaseReply{e: e, handle: e.handle}
}

// reserve allocates the memory of a pending seal, with no lease held.
func (a *gpuActor) reserve(id string, gen uint64, size int64) (*entry, error) {
	if _, ok := a.t.byID[id]; ok {
		return nil, fmt.Errorf("shard %+q: %w", id, messages.ErrDuplicateShard)
	}
	free, _, err := a.cfg.Device.MemInfo()
	if err != nil {
		return nil, fmt.Errorf("device %d: memory info: %w", a.cfg.Index, err)
	}
	available := max(free-a.cfg.Headroom, 0)
	if size > available {
		return nil, &messages.InsufficientVRAMError{Device: a.cfg.Index, Needed: size, Available: available}
	}
	h, err := a.cfg.Device.Allocate(size)
	if errors.Is(err, messages.ErrInsufficientVRAM) {
		return nil, &messages.InsufficientVRAMError{Device: a.cfg.Index, Needed: size, Available: available}
	}
	if err != nil {
		return nil, fmt.Errorf("device %d: allocate %d bytes: %w", a.cfg.Index, size, err)
	}
	e := &entry{id: id, gen: gen, size: size, handle: h, state: statePending}
	a.t.byID[id] = e
	a.t.staged += size
	return e, nil
}

// place seals a small shard in one turn: reserve, copy, commit. A copy
// that fails frees the memory at once; the seal records why.
func (a *gpuActor) place(m *place) leaseReply {
	if int64(len(m.data)) != m.record.Size || m.record.Size > PlaceLimit {
		return leaseReply{err: fmt.Errorf("place shard %+q: %d bytes for a record of %d, at most %d: %w",
			m.record.ID, len(m.data), m.record.Size, PlaceLimit, messages.ErrInvalidInput)}
	}
	e, err := a.reserve(m.record.ID, m.record.Generation, m.record.Size)
	if err != nil {
		return leaseReply{err: err}
	}
	if err := a.cfg.Device.Write(e.handle, 0, m.data); err != nil {
		a.discard(e)
		return leaseReply{err: fmt.Errorf("device %d: copy to device: %w", a.cfg.Index, err)}
	}
	e.pins.take() // carries the shard until its seal is recorded
	if err := a.commit(&commit{e: e, record: m.record, chunks: m.chunks}); err != nil {
		e.pins.drop()
		a.discard(e)
		return leaseReply{err: err}
	}
	return leaseReply{e: e, handle: e.handle}
}

// discard frees a pending entry no lease holds, which its seal will not
// record as freed.
func (a *gpuActor) discard(e *entry) {
	e.aborted = true
	a.close(e)
	if err := a.free(e); err != nil {
		a.cfg.Logger.Error("freeing a seal's memory that its copy did not fill", "device", a.cfg.Index, "err", err)
	}
}

// checkEntry returns e, the live entry of a caller's record's ID (nil if
// none), if the record is the one it keeps. A record of a generation that
// is not live is ErrUnknownShard; one of a live generation that differs is
// an integrity failure. The actor and the lookups outside it share it.
func checkEntry(e *entry, rec sealer.Shard, device int) (*entry, error) {
	if e == nil || e.gen != rec.Generation {
		return nil, fmt.Errorf("shard %+q: %w", rec.ID, messages.ErrUnknownShard)
	}
	if !e.shard.Record.Equal(rec) {
		return nil, &messages.IntegrityError{ShardID: rec.ID, Device: device, Reason: messages.ReasonRecordMismatch}
	}
	return e, nil
}

func (a *gpuActor) commit(m *commit) error {
	e := m.e
	switch {
	case e.state == stateDoomed:
		return e.revoked()
	case e.state != statePending:
		return fmt.Errorf("commit shard %+q: no seal in progress: %w", e.id, messages.ErrUnknownShard)
	case e.pins.held() == 0:
		return fmt.Errorf("commit shard %+q: the seal holds no lease: %w", e.id, messages.ErrInvalidInput)
	case m.record.ID != e.id || m.record.Generation != e.gen || m.record.Size != e.size:
		return fmt.Errorf("commit shard %+q: the record does not name this allocation: %w", e.id, messages.ErrInvalidInput)
	}
	e.state = stateLive
	e.shard = rehash.Shard{Record: m.record, Chunks: m.chunks}
	a.t.staged -= e.size
	a.t.held += e.size
	a.t.live.put(e)
	return nil
}

// abort frees a seal that will not complete. One taken back by a drain is
// freed by it and answers ErrRevoked.
func (a *gpuActor) abort(e *entry) error {
	if e.state == stateDoomed {
		return e.revoked()
	}
	e.aborted = true
	if a.close(e) {
		return a.free(e)
	}
	return nil
}

// doom takes e out of the table, if still in it; it is freed now if no
// lease is held, else when the last one ends, and w hears of it. A drain's
// doom (drained) revokes the embedder leases held on e with cause, and
// makes the free certain: no waiter giving up puts e back.
func (a *gpuActor) doom(e *entry, w *freeWaiter, cause error, drained bool) {
	idle := e.pins.held() == 0
	if e.state != stateDoomed {
		if drained && !e.shard.Record.Signed() {
			// Set before the entry closes, so that a write lease refused
			// once it is closed reads why (Allocation.Lease).
			e.revokedBy = cause
		}
		idle = a.close(e)
	}
	e.waiters = append(e.waiters, w)
	if drained && !e.drained {
		e.drained = true
		e.holderSet().RevokeAll(cause)
	}
	if idle {
		a.free(e)
	}
}

// close takes e, pending or live, out of the table and refuses new leases
// on it; it reports whether none is held, so that it may be freed now.
func (a *gpuActor) close(e *entry) (idle bool) {
	delete(a.t.byID, e.id)
	a.t.live.remove(e)
	e.state = stateDoomed
	a.t.doomed[e] = struct{}{}
	return e.pins.close()
}

// drain takes everything on the device: every pending and live entry, and
// every doomed one still waiting for its leases (released, aborted, or
// drained before by a drain that stopped waiting), so that what a drain
// answers is all the device held.
func (a *gpuActor) drain(m *drain) {
	entries := make([]*entry, 0, len(a.t.byID)+len(a.t.doomed))
	for _, e := range a.t.byID {
		entries = append(entries, e)
	}
	for e := range a.t.doomed {
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(x, y *entry) int { return strings.Compare(x.id, y.id) })
	m.waiter.left = len(entries)
	if len(entries) == 0 {
		a.reply(m.waiter)
		return
	}
	for _, e := range entries {
		a.doom(e, m.waiter, m.cause, true)
	}
}

// free frees a doomed entry and tells its waiters: the first gets what was
// freed, to record, unless the entry's own seal aborted it. With no one
// waiting, a drained entry's free is kept as an orphan.
func (a *gpuActor) free(e *entry) error {
	f, err := a.freeMemory(e)
	waiters := e.waiters
	e.waiters = nil
	if len(waiters) == 0 && e.drained && !e.aborted {
		a.t.orphans = append(a.t.orphans, f)
		if a.cfg.OnOrphan != nil {
			a.cfg.OnOrphan()
		}
	}
	for i, w := range waiters {
		if i == 0 && !e.aborted {
			w.freed = append(w.freed, f)
		}
		w.err = errors.Join(w.err, err)
		if w.left--; w.left == 0 {
			a.reply(w)
		}
	}
	return err
}

// freeMemory frees a doomed entry's memory and takes it out of the books.
func (a *gpuActor) freeMemory(e *entry) (Freed, error) {
	delete(a.t.doomed, e)
	if e.shard.Record.Signed() {
		a.t.held -= e.size
	} else {
		a.t.staged -= e.size
	}
	f := freedOf(e)
	f.Shard.Device = a.cfg.Index
	if err := a.cfg.Device.Free(e.handle); err != nil {
		return f, fmt.Errorf("device %d: free: %w", a.cfg.Index, err)
	}
	return f, nil
}

func (a *gpuActor) reply(w *freeWaiter) {
	w.reply <- freeReply{freed: w.freed, err: w.err}
}

func (a *gpuActor) withdraw(w *freeWaiter) freeReply {
	r := freeReply{freed: w.freed, err: w.err}
	if w.left == 0 {
		return r // already answered
	}
	for e := range a.t.doomed {
		if !e.removeWaiter(w) {
			continue
		}
		if w.undoom && len(e.waiters) == 0 && !e.drained && !e.aborted {
			delete(a.t.doomed, e)
			e.state = stateLive
			a.t.byID[e.id] = e
			e.pins.reopen()
			a.t.live.put(e)
		}
	}
	w.left = 0
	w.freed, w.err = nil, nil
	return r
}

func (a *gpuActor) capacity() messages.Capacity {
	c := messages.Capacity{
		Device:   a.cfg.Index,
		Held:     a.t.held + a.t.staged,
		Pending:  a.t.staged,
		Headroom: a.cfg.Headroom,
	}
	for _, e := range a.t.byID {
		if e.state == stateLive {
			c.Shards++
		}
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
	views := make([]ShardView, 0, len(a.t.byID))
	for _, e := range a.t.byID {
		if e.state == stateLive {
			views = append(views, ShardView{Shard: e.shard, LastVerified: e.lastVerified})
		}
	}
	slices.SortFunc(views, func(x, y ShardView) int { return strings.Compare(x.Record.ID, y.Record.ID) })
	return views
}

// freeEverything frees every allocation the table names that no lease
// holds, and returns what it freed, orphans included, and how many
// allocations it left allocated because they are leased. It goes on past
// errors so that one bad free does not leak the rest.
func (a *gpuActor) freeEverything() (freed []Freed, leased int) {
	for _, e := range a.t.byID {
		a.close(e)
	}
	freed = a.t.orphans
	a.t.orphans = nil
	for e := range a.t.doomed {
		if e.pins.held() > 0 {
			leased++
			continue
		}
		f, err := a.freeMemory(e)
		if err != nil {
			a.cfg.Logger.Error("freeing device memory on stop", "device", a.cfg.Index, "err", err)
		}
		if !e.aborted {
			freed = append(freed, f)
		}
	}
	return freed, leased
}
