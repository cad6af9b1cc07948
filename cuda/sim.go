package cuda

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"

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
	// Prefault takes all Capacity bytes of host memory at NewSim and writes
	// every page once, so that the host backs them before any clock starts;
	// allocations are then carved from that memory and freed space is
	// reused, as on a GPU. Without it each allocation is fresh host memory,
	// and the first write to each page pays the host's page fault. Reused
	// memory is not cleared (cuMemAlloc does not clear it either). Should
	// fragmentation leave no free extent large enough for an allocation the
	// capacity allows, that one allocation gets fresh host memory instead.
	Prefault bool
	// Shareable backs every allocation with a sealed memfd of its own
	// (never the arena), which Share hands to another process to map
	// read-only (Linux only).
	Shareable bool
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
// large copies on different allocations proceed in parallel. It hashes in
// place (ChunkHasher) on host cores, and counts the bytes it hands out
// (BytesRead) and hashes (BytesHashed), so tests can tell the two paths
// apart.
type Sim struct {
	props     Properties
	shareable bool

	// mu guards the fields below. An allocation's lock may be held while
	// taking mu, never the other way round.
	mu     sync.Mutex
	table  AllocTable[simMemory]
	arena  *simArena
	faults simFaults
	rng    *rand.Rand

	bytesRead, bytesHashed atomic.Int64
	hashing                *hashChooser // how HashSpans hashes a chunk
}

// simMemory is one allocation's bytes, and where they lie in the arena if
// they came from it, or the memfd that holds them if shareable.
type simMemory struct {
	data    []byte
	extent  simExtent
	inArena bool
	// mapping is the whole page-aligned mapping of file, of which data is
	// the first Size bytes; both are nil unless the Sim is shareable.
	mapping []byte
	file    *os.File
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
	s := &Sim{
		props: Properties{
			Name:         name,
			UUID:         simUUID(cfg.Seed, name),
			TotalMemory:  cfg.Capacity,
			ComputeMajor: simComputeMajor,
			ComputeMinor: simComputeMinor,
		},
		table:     NewAllocTable[simMemory]("sim"),
		faults:    simFaults{writeBudget: -1},
		rng:       rand.New(rand.NewPCG(uint64(cfg.Seed), simRNGStream)),
		hashing:   newHashChooser(hashWays),
		shareable: cfg.Shareable,
	}
	if cfg.Prefault {
		s.arena = newSimArena(cfg.Capacity)
	}
	return s, nil
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
	return s.props.TotalMemory - s.table.bytes, s.props.TotalMemory, nil
}

// Allocate reserves size bytes of host memory standing in for VRAM: from the
// prefaulted arena if there is one, else fresh. Without an arena only
// allocations take host memory, never the capacity as a whole.
func (s *Sim) Allocate(size int64) (Handle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked("allocate"); err != nil {
		return 0, err
	}
	if err := s.table.CheckSize(size); err != nil {
		return 0, err
	}
	if s.faults.allocFailures > 0 {
		s.faults.allocFailures--
		return 0, fmt.Errorf("sim: allocate %d bytes: injected failure: %w", size, messages.ErrAllocationFailed)
	}
	if free := s.props.TotalMemory - s.table.bytes; size > free {
		return 0, fmt.Errorf("sim: allocate %d bytes with %d free: %w", size, free, messages.ErrInsufficientVRAM)
	}
	if s.shareable {
		m, err := newMemfd(size)
		if err != nil {
			return 0, err
		}
		return s.table.Add(size, m), nil
	}
	if s.arena != nil {
		if x, ok := s.arena.take(size); ok {
			return s.table.Add(size, simMemory{data: s.arena.bytes(x), extent: x, inArena: true}), nil
		}
	}
	return s.table.Add(size, simMemory{data: make([]byte, size)}), nil
}

// Free releases an allocation. A copy already under way on it finishes first.
func (s *Sim) Free(h Handle) error {
	s.mu.Lock()
	if err := s.usableLocked("free"); err != nil {
		s.mu.Unlock()
		return err
	}
	a, err := s.table.Remove(h)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.release(a)
	return nil
}

// Write copies p into the allocation at offset.
func (s *Sim) Write(h Handle, offset int64, p []byte) error {
	a, err := s.lookup("write", h, offset, int64(len(p)))
	if err != nil {
		return err
	}
	return a.Exclusive("sim", "write", h, func(m simMemory) error {
		n, err := s.reserveWrite(int64(len(p)))
		copy(m.data[offset:], p[:n])
		return err
	})
}

// Read copies len(p) bytes of the allocation at offset into p.
func (s *Sim) Read(h Handle, offset int64, p []byte) error {
	a, err := s.lookup("read", h, offset, int64(len(p)))
	if err != nil {
		return err
	}
	return a.Shared("sim", "read", h, func(m simMemory) error {
		if err := s.takeReadFailure(); err != nil {
			return err
		}
		s.bytesRead.Add(int64(copy(p, m.data[offset:])))
		return nil
	})
}

// Close frees every outstanding allocation; later calls other than Close,
// Properties and the inspection methods fail with messages.ErrStopped. It is
// idempotent and works on a lost device.
func (s *Sim) Close() error {
	s.mu.Lock()
	left := s.table.Close()
	s.arena = nil
	s.mu.Unlock()

	for _, a := range left {
		s.release(a)
	}
	return nil
}

// Outstanding returns the number of live allocations. It answers after Close
// and on a lost device.
func (s *Sim) Outstanding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.table.Count()
}

// Allocations lists the live allocations in handle order. It answers after
// Close and on a lost device.
func (s *Sim) Allocations() []AllocInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.table.Infos()
}

// BytesRead returns how many bytes Read has copied out of the device since
// NewSim. It answers after Close and on a lost device.
func (s *Sim) BytesRead() int64 { return s.bytesRead.Load() }

// BytesHashed returns how many bytes HashChunks has hashed in place since
// NewSim. It answers after Close and on a lost device.
func (s *Sim) BytesHashed() int64 { return s.bytesHashed.Load() }

// usableLocked fails if the device is closed or lost. s.mu must be held.
func (s *Sim) usableLocked(op string) error {
	if err := s.table.Usable(op); err != nil {
		return err
	}
	if s.faults.lost {
		return fmt.Errorf("sim: %s: device lost: %w", op, messages.ErrDeviceFault)
	}
	return nil
}

// lookup finds a live allocation and checks that [offset, offset+n) lies
// within it.
func (s *Sim) lookup(op string, h Handle, offset, n int64) (*Allocation[simMemory], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(op); err != nil {
		return nil, err
	}
	return s.table.Within(op, h, offset, n)
}

// release drops an allocation's bytes once no copy is using them, giving
// arena memory back for reuse.
func (s *Sim) release(a *Allocation[simMemory]) {
	_ = a.Release(func(m simMemory) error {
		if m.file != nil {
			releaseMemfd(m)
		}
		if m.inArena {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.arena != nil {
				s.arena.give(m.extent)
			}
		}
		return nil
	})
}
