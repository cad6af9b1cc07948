package cuda

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/vramseal/vramseal/messages"
)

// DefaultSimName is the product name a Sim reports when SimConfig.Name is empty.
const DefaultSimName = "vramseal simulated GPU"

// simComputeMajor and simComputeMinor are the compute capability a Sim
// reports: that of a Hopper GPU.
const (
	simComputeMajor = 9
	simComputeMinor = 0
)

// simRNGStream is the second PCG word: any fixed value keeps the sequence a
// function of the seed alone.
const simRNGStream = 0x9e3779b97f4a7c15

// SimConfig configures a simulated GPU.
type SimConfig struct {
	// Name is the product name Properties reports; empty means DefaultSimName.
	Name string
	// Capacity is the simulated device memory in bytes. It must be positive.
	Capacity int64
	// Seed makes the UUID and FlipRandomBit deterministic.
	Seed int64
}

// AllocInfo describes one outstanding allocation of a Sim.
type AllocInfo struct {
	// Handle names the allocation.
	Handle Handle
	// Size is the size in bytes, as requested.
	Size int64
}

// Sim is a simulated GPU for tests and demos only: its "VRAM" is host memory.
// It accounts capacity exactly (the sum of requested sizes never exceeds
// Capacity), keeps a record of outstanding allocations, and injects faults on
// request (see FailAllocations, FailWriteAfter, FailReads, FlipBit, Lose). It
// is safe for concurrent use; copies run outside the device-wide lock, so
// large copies on different allocations proceed in parallel.
type Sim struct {
	props Properties

	// mu guards the fields below.
	mu         sync.Mutex
	allocs     map[Handle]*simAllocation
	allocated  int64
	lastHandle Handle
	closed     bool
	faults     simFaults
	rng        *rand.Rand
}

// simAllocation is one allocation's bytes. Its lock orders copies on it
// against Free and Close. Sim.mu may be taken while holding it, never the
// other way round.
type simAllocation struct {
	size int64

	mu    sync.RWMutex
	data  []byte
	freed bool
}

var _ Device = (*Sim)(nil)

// NewSim returns a simulated GPU with the given capacity. It fails with
// messages.ErrConfig if the capacity is not positive.
func NewSim(cfg SimConfig) (*Sim, error) {
	if cfg.Capacity <= 0 {
		return nil, fmt.Errorf("sim: capacity %d bytes must be positive: %w", cfg.Capacity, messages.ErrConfig)
	}
	name := cfg.Name
	if name == "" {
		name = DefaultSimName
	}
	return &Sim{
		props: Properties{
			Name:         name,
			UUID:         simUUID(cfg.Seed, name),
			TotalMemory:  cfg.Capacity,
			ComputeMajor: simComputeMajor,
			ComputeMinor: simComputeMinor,
		},
		allocs: make(map[Handle]*simAllocation),
		faults: simFaults{writeBudget: -1},
		rng:    rand.New(rand.NewPCG(uint64(cfg.Seed), simRNGStream)),
	}, nil
}

// simUUID derives a stable, UUID-shaped identifier from the seed and name.
func simUUID(seed int64, name string) string {
	h := sha256.New()
	var seedBytes [8]byte
	binary.BigEndian.PutUint64(seedBytes[:], uint64(seed))
	h.Write(seedBytes[:])
	h.Write([]byte(name))
	b := h.Sum(nil)
	return fmt.Sprintf("GPU-SIM-%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Properties describes the simulated device. It answers even after Close.
func (s *Sim) Properties() Properties { return s.props }

// MemInfo returns the capacity less the bytes allocated, and the capacity.
func (s *Sim) MemInfo() (free, total int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked("meminfo"); err != nil {
		return 0, 0, err
	}
	return s.props.TotalMemory - s.allocated, s.props.TotalMemory, nil
}

// Allocate reserves size bytes of host memory standing in for VRAM. Only
// allocations take host memory, never the capacity as a whole.
func (s *Sim) Allocate(size int64) (Handle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked("allocate"); err != nil {
		return 0, err
	}
	if size <= 0 {
		return 0, fmt.Errorf("sim: allocate %d bytes: size must be positive: %w", size, messages.ErrInvalidInput)
	}
	if s.faults.allocFailures > 0 {
		s.faults.allocFailures--
		return 0, fmt.Errorf("sim: allocate %d bytes: injected failure: %w", size, messages.ErrAllocationFailed)
	}
	if free := s.props.TotalMemory - s.allocated; size > free {
		return 0, fmt.Errorf("sim: allocate %d bytes with %d free: %w", size, free, messages.ErrInsufficientVRAM)
	}
	s.lastHandle++
	h := s.lastHandle
	s.allocs[h] = &simAllocation{size: size, data: make([]byte, size)}
	s.allocated += size
	return h, nil
}

// Free releases an allocation. A copy already under way on it finishes first.
func (s *Sim) Free(h Handle) error {
	s.mu.Lock()
	if err := s.usableLocked("free"); err != nil {
		s.mu.Unlock()
		return err
	}
	a, ok := s.allocs[h]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("sim: free handle %d: no such allocation: %w", h, messages.ErrInvalidInput)
	}
	delete(s.allocs, h)
	s.allocated -= a.size
	s.mu.Unlock()

	a.release()
	return nil
}

// Write copies p into the allocation at offset.
func (s *Sim) Write(h Handle, offset int64, p []byte) error {
	a, err := s.lookup("write", h, offset, int64(len(p)))
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.freed {
		return freedError("write", h)
	}
	n, err := s.reserveWrite(int64(len(p)))
	copy(a.data[offset:], p[:n])
	return err
}

// Read copies len(p) bytes of the allocation at offset into p.
func (s *Sim) Read(h Handle, offset int64, p []byte) error {
	a, err := s.lookup("read", h, offset, int64(len(p)))
	if err != nil {
		return err
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.freed {
		return freedError("read", h)
	}
	if err := s.takeReadFailure(); err != nil {
		return err
	}
	copy(p, a.data[offset:])
	return nil
}

// Close frees every outstanding allocation; later calls other than Close,
// Properties and the inspection methods fail with messages.ErrStopped. It is
// idempotent and works on a lost device.
func (s *Sim) Close() error {
	s.mu.Lock()
	allocs := s.allocs
	s.allocs = make(map[Handle]*simAllocation)
	s.allocated = 0
	s.closed = true
	s.mu.Unlock()

	for _, a := range allocs {
		a.release()
	}
	return nil
}

// Outstanding returns the number of live allocations. It answers after Close
// and on a lost device.
func (s *Sim) Outstanding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.allocs)
}

// Allocations lists the live allocations in handle order. It answers after
// Close and on a lost device.
func (s *Sim) Allocations() []AllocInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.allocationsLocked()
}

// allocationsLocked lists the live allocations in handle order. s.mu must be
// held.
func (s *Sim) allocationsLocked() []AllocInfo {
	infos := make([]AllocInfo, 0, len(s.allocs))
	for h, a := range s.allocs {
		infos = append(infos, AllocInfo{Handle: h, Size: a.size})
	}
	slices.SortFunc(infos, func(x, y AllocInfo) int { return cmp.Compare(x.Handle, y.Handle) })
	return infos
}

// usableLocked fails if the device is closed or lost. s.mu must be held.
func (s *Sim) usableLocked(op string) error {
	if s.closed {
		return fmt.Errorf("sim: %s: device closed: %w", op, messages.ErrStopped)
	}
	if s.faults.lost {
		return fmt.Errorf("sim: %s: device lost: %w", op, messages.ErrDeviceFault)
	}
	return nil
}

// lookup finds a live allocation and checks that [offset, offset+n) lies
// within it, without overflowing.
func (s *Sim) lookup(op string, h Handle, offset, n int64) (*simAllocation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(op); err != nil {
		return nil, err
	}
	a, ok := s.allocs[h]
	if !ok {
		return nil, fmt.Errorf("sim: %s handle %d: no such allocation: %w", op, h, messages.ErrInvalidInput)
	}
	if offset < 0 || n > a.size || offset > a.size-n {
		return nil, fmt.Errorf("sim: %s %d bytes at offset %d of a %d-byte allocation: out of bounds: %w",
			op, n, offset, a.size, messages.ErrInvalidInput)
	}
	return a, nil
}

// release drops the allocation's bytes once no copy is using them.
func (a *simAllocation) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.data = nil
	a.freed = true
}

// freedError reports a copy that lost a race with Free or Close.
func freedError(op string, h Handle) error {
	return fmt.Errorf("sim: %s handle %d: allocation freed: %w", op, h, messages.ErrInvalidInput)
}
