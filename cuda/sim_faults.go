package cuda

import (
	"fmt"

	"github.com/vramseal/vramseal/messages"
)

// simFaults is the fault-injection state of a Sim, guarded by Sim.mu.
type simFaults struct {
	// allocFailures is how many more Allocate calls fail.
	allocFailures int
	// writeBudget is how many more bytes writes may copy; negative is unlimited.
	writeBudget int64
	// readFailures is how many more Read calls fail.
	readFailures int
	// lost is true once the device has been lost.
	lost bool
}

// FailAllocations makes the next n valid Allocate calls fail with
// messages.ErrAllocationFailed; later calls succeed again. n <= 0 disarms it.
func (s *Sim) FailAllocations(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.allocFailures = max(n, 0)
}

// FailWriteAfter lets writes copy this many more bytes in total, then makes
// them fail with ErrCopyFailed: the write that crosses the limit copies the
// bytes up to it and fails, and every later non-empty write fails without
// copying, until a negative value disarms the fault. Allocations stay valid
// and can be freed.
func (s *Sim) FailWriteAfter(bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.writeBudget = bytes
}

// FailReads makes the next n valid Read calls fail with ErrCopyFailed,
// copying nothing. n <= 0 disarms it.
func (s *Sim) FailReads(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.readFailures = max(n, 0)
}

// Lose simulates a lost device: every later call fails with
// messages.ErrDeviceFault, except Close, which still frees every allocation,
// and Properties, Outstanding and Allocations, which still answer.
func (s *Sim) Lose() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.lost = true
}

// FlipBit flips bit (0 is the least significant) of the byte at offset in the
// allocation, and nothing else, as a stray write or a memory error would.
func (s *Sim) FlipBit(h Handle, offset int64, bit uint) error {
	if bit > 7 {
		return fmt.Errorf("sim: flip bit %d: a byte has bits 0 to 7: %w", bit, messages.ErrInvalidInput)
	}
	a, err := s.lookup("flip bit", h, offset, 1)
	if err != nil {
		return err
	}
	return a.Exclusive("sim", "flip bit", h, func(m simMemory) error {
		m.data[offset] ^= 1 << bit
		return nil
	})
}

// FlipRandomBit flips one bit chosen with the seeded generator: an allocation,
// an offset in it and a bit. For a given seed and sequence of calls the choice
// is the same every run. It fails with messages.ErrInvalidInput when nothing
// is allocated, or when the chosen allocation is freed before the flip.
func (s *Sim) FlipRandomBit() (Handle, int64, uint, error) {
	h, offset, bit, err := s.pickBit()
	if err != nil {
		return 0, 0, 0, err
	}
	return h, offset, bit, s.FlipBit(h, offset, bit)
}

// pickBit chooses a live allocation in handle order, an offset and a bit.
func (s *Sim) pickBit() (Handle, int64, uint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked("flip random bit"); err != nil {
		return 0, 0, 0, err
	}
	infos := s.table.Infos()
	if len(infos) == 0 {
		return 0, 0, 0, fmt.Errorf("sim: flip random bit: nothing allocated: %w", messages.ErrInvalidInput)
	}
	pick := infos[s.rng.IntN(len(infos))]
	return pick.Handle, s.rng.Int64N(pick.Size), uint(s.rng.IntN(8)), nil
}

// reserveWrite takes up to n bytes from the write budget and returns how many
// the write may copy, with ErrCopyFailed if that is fewer than n.
func (s *Sim) reserveWrite(n int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	budget := s.faults.writeBudget
	if budget < 0 || n <= budget {
		if budget >= 0 {
			s.faults.writeBudget -= n
		}
		return n, nil
	}
	s.faults.writeBudget = 0
	return budget, fmt.Errorf("sim: write failed after %d of %d bytes: injected fault: %w", budget, n, ErrCopyFailed)
}

// takeReadFailure consumes one injected read failure, if any is armed.
func (s *Sim) takeReadFailure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.readFailures == 0 {
		return nil
	}
	s.faults.readFailures--
	return fmt.Errorf("sim: read failed: injected fault: %w", ErrCopyFailed)
}
