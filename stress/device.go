package stress

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
)

// faultyDevice is a simulated GPU behind the fault injector. It decides with
// its own seeded generator which allocations, copies and reads fail, makes
// them fail through the Sim's own fault injection, and counts them. It also
// learns which allocation holds which shard from the header every seal
// starts with, so a caller can flip a bit of its own shard.
//
// The runtime's GPU actor makes every call on it from one goroutine; the
// lock keeps an armed Sim fault and the call it is meant for together all
// the same, since callers flip bits from theirs.
type faultyDevice struct {
	sim     *cuda.Sim
	index   int
	faults  Faults
	retries int
	tally   faultTally

	mu sync.Mutex
	// skipFree is a test hook: when it says so, Free does nothing.
	skipFree func(device int) bool
	rng      *rand.Rand
	handles  map[string]cuda.Handle
	ids      map[cuda.Handle]string
	// burst is how many more reads of a chunk fail; burstDone marks chunks
	// that had their burst, so that no caller ever sees more failures of
	// one chunk than the runtime retries.
	burst     map[chunkKey]int
	burstDone map[chunkKey]bool
	// unretried counts injected read failures not yet followed by another
	// read of the same chunk.
	unretried map[chunkKey]int
	// leftAtClose is how many allocations the runtime had not freed itself
	// when it closed the device.
	leftAtClose int
}

// chunkKey names one read position in one allocation.
type chunkKey struct {
	handle cuda.Handle
	offset int64
}

var _ cuda.Device = (*faultyDevice)(nil)

func newFaultyDevice(sim *cuda.Sim, index int, faults Faults, retries int, seed uint64, tally faultTally, skipFree func(int) bool) *faultyDevice {
	return &faultyDevice{
		sim: sim, index: index, faults: faults, retries: retries, tally: tally, skipFree: skipFree,
		rng:       rand.New(rand.NewPCG(seed, uint64(index))),
		handles:   map[string]cuda.Handle{},
		ids:       map[cuda.Handle]string{},
		burst:     map[chunkKey]int{},
		burstDone: map[chunkKey]bool{},
		unretried: map[chunkKey]int{},
	}
}

// Properties describes the simulated device.
func (d *faultyDevice) Properties() cuda.Properties { return d.sim.Properties() }

// MemInfo reports the simulated device's memory.
func (d *faultyDevice) MemInfo() (int64, int64, error) { return d.sim.MemInfo() }

// Allocate allocates, failing at the configured rate.
func (d *faultyDevice) Allocate(size int64) (cuda.Handle, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.roll(d.faults.Alloc) {
		return d.sim.Allocate(size)
	}
	d.sim.FailAllocations(1)
	h, err := d.sim.Allocate(size)
	d.sim.FailAllocations(0)
	if errors.Is(err, messages.ErrAllocationFailed) {
		d.tally.inject(FaultAlloc)
	}
	return h, err
}

// Write copies p to the device, stopping part-way at the configured rate.
// A write at offset 0 carries the shard's header, which names its shard.
func (d *faultyDevice) Write(h cuda.Handle, offset int64, p []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if offset == 0 {
		if id := shardIDFromHeader(p); id != "" {
			d.handles[id], d.ids[h] = h, id
		}
	}
	if len(p) == 0 || !d.roll(d.faults.Copy) {
		return d.sim.Write(h, offset, p)
	}
	d.sim.FailWriteAfter(d.rng.Int64N(int64(len(p))))
	err := d.sim.Write(h, offset, p)
	d.sim.FailWriteAfter(-1)
	if errors.Is(err, cuda.ErrCopyFailed) {
		d.tally.inject(FaultCopy)
	}
	return err
}

// Read copies from the device. At the configured rate a read starts a burst
// of 1 to retries failures of that chunk; a chunk gets at most one burst.
func (d *faultyDevice) Read(h cuda.Handle, offset int64, p []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := chunkKey{h, offset}
	if n := d.unretried[key]; n > 0 {
		d.tally.detect(FaultRead, n)
		delete(d.unretried, key)
	}
	left, bursting := d.burst[key]
	if !bursting && !d.burstDone[key] && d.roll(d.faults.Read) {
		left, bursting = 1+d.rng.IntN(d.retries), true
		d.burstDone[key] = true
	}
	if !bursting {
		return d.sim.Read(h, offset, p)
	}
	if left > 1 {
		d.burst[key] = left - 1
	} else {
		delete(d.burst, key)
	}
	d.sim.FailReads(1)
	err := d.sim.Read(h, offset, p)
	d.sim.FailReads(0)
	if errors.Is(err, cuda.ErrCopyFailed) {
		d.tally.inject(FaultRead)
		d.unretried[key]++
	} else {
		delete(d.burst, key)
	}
	return err
}

// Free frees an allocation. Read failures on it that were never retried
// count as handled: the runtime no longer needs those bytes.
func (d *faultyDevice) Free(h cuda.Handle) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forget(h)
	if d.skipFree != nil && d.skipFree(d.index) {
		return nil
	}
	return d.sim.Free(h)
}

// Close notes what the runtime left allocated, then closes the simulated
// device, which frees everything.
func (d *faultyDevice) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.leftAtClose = d.sim.Outstanding()
	for h := range d.ids {
		d.forget(h)
	}
	for key, n := range d.unretried {
		d.tally.detect(FaultRead, n)
		delete(d.unretried, key)
	}
	return d.sim.Close()
}

// flip flips one bit of the live shard id.
func (d *faultyDevice) flip(id string, offset int64, bit uint) error {
	d.mu.Lock()
	h, ok := d.handles[id]
	d.mu.Unlock()
	if !ok {
		return fmt.Errorf("flip: device %d holds no shard %q", d.index, id)
	}
	return d.sim.FlipBit(h, offset, bit)
}

// setSkipFree replaces the skipFree test hook.
func (d *faultyDevice) setSkipFree(skip func(device int) bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.skipFree = skip
}

// lose loses the device.
func (d *faultyDevice) lose() { d.sim.Lose() }

// allocationsLeftAtClose is how many allocations the runtime left for Close
// to free.
func (d *faultyDevice) allocationsLeftAtClose() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.leftAtClose
}

// forget drops what the device knew of allocation h. d.mu must be held.
func (d *faultyDevice) forget(h cuda.Handle) {
	if id, ok := d.ids[h]; ok {
		delete(d.handles, id)
		delete(d.ids, h)
	}
	for key, n := range d.unretried {
		if key.handle == h {
			d.tally.detect(FaultRead, n)
			delete(d.unretried, key)
		}
	}
	for key := range d.burstDone {
		if key.handle == h {
			delete(d.burstDone, key)
			delete(d.burst, key)
		}
	}
}

// roll reports true with probability p. d.mu must be held.
func (d *faultyDevice) roll(p float64) bool { return p > 0 && d.rng.Float64() < p }
