package cuda

import (
	"cmp"
	"fmt"
	"slices"
	"sync"

	"github.com/vramseal/vramseal/messages"
)

// AllocTable is the handle table and bounds checks every backend shares
// (exported for Device implementations, such as cuda/driver's):
// it hands out handles that are never reused, finds live allocations,
// checks that a span lies inside one without overflowing, and gives up
// every allocation at Close. M is what the backend keeps per allocation
// (host bytes for Sim, a device address for Driver).
//
// It is not safe for concurrent use: its owner guards it with its own lock.
// Copies run outside that lock, under the allocation's own lock (see
// Allocation), so that Free never frees memory under a copy.
type AllocTable[M any] struct {
	// name prefixes every error, such as "sim" or "cuda device 0".
	name   string
	allocs map[Handle]*Allocation[M]
	last   Handle
	bytes  int64
	closed bool
}

// Allocation is one allocation. Copies hold mu shared (or exclusive,
// where the backend's memory must not see concurrent writes); release takes
// it exclusive, so memory is never given up under a copy.
type Allocation[M any] struct {
	size int64

	mu    sync.RWMutex
	mem   M
	freed bool
}

// NewAllocTable returns an empty table whose errors begin with name.
func NewAllocTable[M any](name string) AllocTable[M] {
	return AllocTable[M]{name: name, allocs: make(map[Handle]*Allocation[M])}
}

// Name is the prefix of the table's errors, such as "sim" or "cuda device 0".
func (t *AllocTable[M]) Name() string { return t.name }

// Closed reports whether Close has been called.
func (t *AllocTable[M]) Closed() bool { return t.closed }

// Usable fails with messages.ErrStopped once the table is closed.
func (t *AllocTable[M]) Usable(op string) error {
	if t.closed {
		return fmt.Errorf("%s: %s: device closed: %w", t.name, op, messages.ErrStopped)
	}
	return nil
}

// CheckSize fails with messages.ErrInvalidInput unless size is positive.
func (t *AllocTable[M]) CheckSize(size int64) error {
	if size <= 0 {
		return fmt.Errorf("%s: allocate %d bytes: size must be positive: %w", t.name, size, messages.ErrInvalidInput)
	}
	return nil
}

// Add records a new allocation of size bytes holding mem and returns its
// handle, one never handed out before.
func (t *AllocTable[M]) Add(size int64, mem M) Handle {
	t.last++
	t.allocs[t.last] = &Allocation[M]{size: size, mem: mem}
	t.bytes += size
	return t.last
}

// Find returns the live allocation h.
func (t *AllocTable[M]) Find(op string, h Handle) (*Allocation[M], error) {
	if err := t.Usable(op); err != nil {
		return nil, err
	}
	a, ok := t.allocs[h]
	if !ok {
		return nil, fmt.Errorf("%s: %s handle %d: no such allocation: %w", t.name, op, h, messages.ErrInvalidInput)
	}
	return a, nil
}

// Within returns the live allocation h after checking that [offset, offset+n)
// lies within it, without overflowing.
func (t *AllocTable[M]) Within(op string, h Handle, offset, n int64) (*Allocation[M], error) {
	a, err := t.Find(op, h)
	if err != nil {
		return nil, err
	}
	if offset < 0 || n < 0 || n > a.size || offset > a.size-n {
		return nil, fmt.Errorf("%s: %s %d bytes at offset %d of a %d-byte allocation: out of bounds: %w",
			t.name, op, n, offset, a.size, messages.ErrInvalidInput)
	}
	return a, nil
}

// Spans returns the live allocation of each span, after checking that the
// span lies within it.
func (t *AllocTable[M]) Spans(op string, spans []Span) ([]*Allocation[M], error) {
	allocs := make([]*Allocation[M], len(spans))
	for i, s := range spans {
		a, err := t.Within(op, s.Handle, s.Offset, s.Length)
		if err != nil {
			return nil, err
		}
		allocs[i] = a
	}
	return allocs, nil
}

// Remove takes h out of the table; the caller then releases it.
func (t *AllocTable[M]) Remove(h Handle) (*Allocation[M], error) {
	a, err := t.Find("free", h)
	if err != nil {
		return nil, err
	}
	delete(t.allocs, h)
	t.bytes -= a.size
	return a, nil
}

// Close marks the table closed and returns every allocation still in it,
// for the caller to release.
func (t *AllocTable[M]) Close() []*Allocation[M] {
	t.closed = true
	left := make([]*Allocation[M], 0, len(t.allocs))
	for _, a := range t.allocs {
		left = append(left, a)
	}
	clear(t.allocs)
	t.bytes = 0
	return left
}

// Count returns the number of live allocations.
func (t *AllocTable[M]) Count() int { return len(t.allocs) }

// Infos lists the live allocations in handle order.
func (t *AllocTable[M]) Infos() []AllocInfo {
	infos := make([]AllocInfo, 0, len(t.allocs))
	for h, a := range t.allocs {
		infos = append(infos, AllocInfo{Handle: h, Size: a.size})
	}
	slices.SortFunc(infos, func(x, y AllocInfo) int { return cmp.Compare(x.Handle, y.Handle) })
	return infos
}

// Shared runs use with the allocation's memory, alongside other shared
// users, unless it has been freed since it was found.
func (a *Allocation[M]) Shared(name, op string, h Handle, use func(M) error) error {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.freed {
		return freedError(name, op, h)
	}
	return use(a.mem)
}

// Exclusive is Shared with no other user at the same time.
func (a *Allocation[M]) Exclusive(name, op string, h Handle, use func(M) error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.freed {
		return freedError(name, op, h)
	}
	return use(a.mem)
}

// SharedAll runs use with the memory of every span's allocation, holding
// each shared (in handle order, and once however many spans name it, so
// that two such calls cannot deadlock with a Free waiting between them),
// unless one has been freed since it was found.
func SharedAll[M any](name, op string, spans []Span, allocs []*Allocation[M], use func(mems []M) error) error {
	order := make([]int, len(spans))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int { return cmp.Compare(spans[x].Handle, spans[y].Handle) })
	for k, i := range order {
		if k > 0 && spans[order[k-1]].Handle == spans[i].Handle {
			continue
		}
		a := allocs[i]
		a.mu.RLock()
		defer a.mu.RUnlock()
		if a.freed {
			return freedError(name, op, spans[i].Handle)
		}
	}
	mems := make([]M, len(spans))
	for i, a := range allocs {
		mems[i] = a.mem
	}
	return use(mems)
}

// Release marks the allocation freed once no copy is using it and gives its
// memory to free.
func (a *Allocation[M]) Release(free func(M) error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.freed = true
	mem := a.mem
	var zero M
	a.mem = zero
	return free(mem)
}

// freedError reports a copy that lost a race with Free or Close.
func freedError(name, op string, h Handle) error {
	return fmt.Errorf("%s: %s handle %d: allocation freed: %w", name, op, h, messages.ErrInvalidInput)
}
