package driver

import (
	"crypto/sha256"
	"errors"
	"sync/atomic"
)

// A kernel launch hashes up to launchChunks chunks of up to launchSpans
// spans. Its span table and digests live in a device buffer that a launch
// lane owns from Open to Close, so that hashing allocates nothing: a full
// device can still be verified, and no launch waits on cuMemAlloc or
// cuMemFree, which synchronize the whole device.
//
// 65,536 chunks is the whole of a 4 GiB shard in 64 KiB chunks, and about
// what an H100's 132 SMs hold at once at the kernel's 94 registers a thread
// (5 blocks of 128 threads an SM: 84,480 threads); fewer leave SMs idle,
// since a chunk is one thread's sequential work. The buffer is then 2 MiB
// of digests and 512 KiB of span table a lane.
const (
	launchChunks      = 1 << 16
	launchSpans       = 1 << 14
	launchBufferBytes = launchSpans*32 + launchChunks*32
)

// launchLanes is how many launches a device runs at once, each on a
// non-blocking stream of its own with its own buffer: while one lane copies
// its digests back and the host compares them, the other's kernel runs.
const launchLanes = 2

// lane is what one launch at a time owns: a stream, the host memory its
// digests are copied back into and, unless device memory ran out, a
// digest buffer.
type lane struct {
	stream stream
	out    []byte    // launchChunks digests
	buf    devicePtr // zero: none, the lane hashes on the host
}

// HashStats counts what the device's hashes did since Open.
type HashStats struct {
	// Launches counts SHA-256 kernel launches.
	Launches int64
	// Chunks counts the chunks those launches hashed.
	Chunks int64
	// HostFallbacks counts hashes that copied chunks out to the host,
	// although the kernel loaded, because device memory was too full for a
	// digest buffer.
	HostFallbacks int64
}

// hashStats are the counters HashStats reads.
type hashStats struct {
	launches, chunks, hostFallbacks atomic.Int64
}

// HashStats returns the device's hash counters. It answers after Close.
func (d *Device) HashStats() HashStats {
	return HashStats{Launches: d.stats.launches.Load(), Chunks: d.stats.chunks.Load(), HostFallbacks: d.stats.hostFallbacks.Load()}
}

// openLanes creates the launch lanes of a device whose kernel loaded: a
// stream each, and a digest buffer each unless device memory is full (then
// that lane hashes on the host until memory is freed).
func (d *Device) openLanes() error {
	d.lanes = make(chan *lane, launchLanes)
	for range launchLanes {
		s, err := d.dev.newStream()
		if err != nil {
			return errors.Join(err, d.closeLanes())
		}
		l := &lane{stream: s, out: make([]byte, launchChunks*sha256.Size)}
		d.lanes <- l
		d.laneCount++
		if err := d.reserve(l); err != nil {
			return errors.Join(err, d.closeLanes())
		}
	}
	return nil
}

// reserve gives l a digest buffer if it has none and device memory allows;
// out of memory is not an error, l then hashes on the host.
func (d *Device) reserve(l *lane) error {
	if l.buf != 0 {
		return nil
	}
	ptr, res := d.dev.alloc(launchBufferBytes)
	switch res {
	case cudaSuccess:
		l.buf = ptr
		d.reserved.Add(launchBufferBytes)
	case cudaErrorOutOfMemory:
	default:
		return cudaError(d.dev.index, "cuMemAlloc digest buffer", res)
	}
	return nil
}

// takeLane waits for a free lane and, if memory was freed since a lane gave
// up its buffer, tries to reserve one again; only a try that finds memory
// still too full stops the others trying until the next Free.
func (d *Device) takeLane() (*lane, error) {
	l := <-d.lanes
	if l.buf == 0 && d.regrow.Load() {
		if err := d.reserve(l); err != nil {
			d.lanes <- l
			return nil, err
		}
		if l.buf == 0 {
			d.regrow.Store(false)
		}
	}
	return l, nil
}

// yieldBuffers frees the digest buffers of the lanes not hashing now, so
// that an allocation the driver refused for want of memory can be retried:
// sealed shards come before launch buffers, and a lane without one hashes
// on the host. It reports whether it freed any.
func (d *Device) yieldBuffers() (bool, error) {
	if d.lanes == nil {
		return false, nil
	}
	var idle []*lane
	defer func() {
		for _, l := range idle {
			d.lanes <- l
		}
	}()
	for range launchLanes {
		select {
		case l := <-d.lanes:
			idle = append(idle, l)
		default:
		}
	}
	freed := false
	for _, l := range idle {
		if l.buf == 0 {
			continue
		}
		if res := d.dev.free(l.buf); res != cudaSuccess {
			return freed, cudaError(d.dev.index, "cuMemFree digest buffer", res)
		}
		l.buf, freed = 0, true
		d.reserved.Add(-launchBufferBytes)
	}
	return freed, nil
}

// closeLanes frees every lane's buffer and destroys its stream, waiting
// for each to be back from any hash that holds it.
func (d *Device) closeLanes() error {
	var errs []error
	for ; d.laneCount > 0; d.laneCount-- {
		l := <-d.lanes
		if l.buf != 0 {
			if res := d.dev.free(l.buf); res != cudaSuccess {
				errs = append(errs, cudaError(d.dev.index, "cuMemFree digest buffer", res))
			}
			d.reserved.Add(-launchBufferBytes)
		}
		errs = append(errs, d.dev.destroyStream(l.stream))
	}
	return errors.Join(errs...)
}
