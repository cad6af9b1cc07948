package rehash

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/cuda/cudatest"
	"github.com/vramseal/vramseal/internal/staging"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

const chunkSize = 64 << 10

// simMemory is a Memory over one Sim: each seal of an ID is a new
// generation, and a lease is granted only on the live one, as a GPU actor
// grants it; leases are counted, so tests can see that every one ends.
type simMemory struct {
	sim     *cuda.Sim
	mu      sync.Mutex
	handles map[string]cuda.Handle
	gens    map[string]uint64
	gone    map[string]bool
	open    int
	copyOut bool
}

func (m *simMemory) Index() int { return 0 }

// Device is the Sim, which hashes in place, or on the copy-out path the
// Sim with its hashing hidden.
func (m *simMemory) Device() cuda.Device {
	if m.copyOut {
		return struct{ cuda.Device }{m.sim}
	}
	return m.sim
}

func (m *simMemory) LeaseRead(id string, gen uint64) (cuda.Handle, func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.handles[id]
	if !ok || m.gone[id] || m.gens[id] != gen {
		return 0, nil, fmt.Errorf("shard %q: %w", id, messages.ErrUnknownShard)
	}
	m.open++
	return h, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.open--
	}, nil
}

func newSimMemory(t *testing.T, copyOut bool, capacity int64) *simMemory {
	t.Helper()
	sim, err := cuda.NewSim(cuda.SimConfig{Capacity: capacity, Seed: 1})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sim.Close()) })
	return &simMemory{sim: sim, handles: map[string]cuda.Handle{}, gens: map[string]uint64{}, gone: map[string]bool{}, copyOut: copyOut}
}

// seal writes data to the device and returns the shard as a GPU actor keeps it.
func (m *simMemory) seal(t *testing.T, id string, data []byte) Shard {
	t.Helper()
	h, err := m.sim.Allocate(int64(len(data)))
	require.NoError(t, err)
	require.NoError(t, m.sim.Write(h, 0, data))
	m.handles[id] = h
	m.gens[id] += 1 + uint64(len(m.gens))<<32
	d, err := sealer.NewDigester(chunkSize)
	require.NoError(t, err)
	d.Write(data)
	sums := d.Digests()
	return Shard{Record: sealer.Shard{ID: id, Size: int64(len(data)), Digest: sums.Digest, ChunkSize: chunkSize, ChunkRoot: sums.ChunkRoot, SealedAt: time.Now(), Generation: m.gens[id]}, Chunks: sums.Chunks}
}

func opts(workers int) Options {
	return Options{Workers: workers, ReadRetries: 2, Buffers: staging.NewPool(chunkSize, 8*chunkSize)}
}

func TestVerifyPassesIntactMemory(t *testing.T) {
	bothPaths(t, func(t *testing.T, copyOut bool) {
		m := newSimMemory(t, copyOut, 4<<20)
		s := m.seal(t, "intact", cudatest.Pattern(1, int64(5*chunkSize+17)))
		for _, workers := range []int{1, 2, 8} {
			assert.NoError(t, Verify(context.Background(), m, s, opts(workers)))
		}
		limited := opts(2)
		limited.Limiter = rate.NewLimiter(rate.Limit(64<<20), chunkSize)
		assert.NoError(t, Verify(context.Background(), m, s, limited))
		assert.Zero(t, m.open, "every read lease ended")
	})
}

func TestVerifyNamesTheCorruptedChunk(t *testing.T) {
	bothPaths(t, func(t *testing.T, copyOut bool) {
		for _, offset := range []int64{0, chunkSize - 1, 3*chunkSize + 5, 5*chunkSize + 16} {
			m := newSimMemory(t, copyOut, 4<<20)
			s := m.seal(t, "victim", cudatest.Pattern(1, int64(5*chunkSize+17)))
			require.NoError(t, m.sim.FlipBit(m.handles["victim"], offset, 7))
			err := Verify(context.Background(), m, s, opts(2))
			var ie *messages.IntegrityError
			require.ErrorAs(t, err, &ie, "offset %d", offset)
			assert.ErrorIs(t, err, messages.ErrSealVerificationFailed)
			chunk := offset / chunkSize
			assert.Equal(t, chunk, ie.Chunk)
			assert.Equal(t, chunk*chunkSize, ie.Offset)
			assert.Equal(t, min(int64(chunkSize), s.Record.Size-chunk*chunkSize), ie.Length)
			assert.NotEqual(t, ie.Expected, ie.Actual)
			assert.Equal(t, messages.ReasonDigestMismatch, ie.Reason)
			assert.Zero(t, m.open, "every read lease ended")
		}
	})
}

// TestVerifyLeasesTheRecordsGeneration defends re-hashing by generation: a
// record of an ID sealed again since is not live, so it is
// messages.ErrUnknownShard, never compared with the newer shard's bytes (a
// digest mismatch would fail-stop the worker).
func TestVerifyLeasesTheRecordsGeneration(t *testing.T) {
	bothPaths(t, func(t *testing.T, copyOut bool) {
		m := newSimMemory(t, copyOut, 4<<20)
		old := m.seal(t, "resealed", cudatest.Pattern(1, int64(2*chunkSize)))
		current := m.seal(t, "resealed", make([]byte, 2*chunkSize))
		require.NotEqual(t, old.Record.Generation, current.Record.Generation)
		err := Verify(context.Background(), m, old, opts(2))
		assert.ErrorIs(t, err, messages.ErrUnknownShard)
		var ie *messages.IntegrityError
		assert.NotErrorAs(t, err, &ie, "the newer shard's bytes are not the old record's")
		assert.NoError(t, Verify(context.Background(), m, current, opts(2)))
		assert.Zero(t, m.open, "every read lease ended")
	})
}

func TestVerifyChecksTheChunkTable(t *testing.T) {
	bothPaths(t, func(t *testing.T, copyOut bool) {
		m := newSimMemory(t, copyOut, 4<<20)
		s := m.seal(t, "table", cudatest.Pattern(1, int64(3*chunkSize)))
		s.Chunks = append([]sealer.ChunkDigest(nil), s.Chunks...)
		s.Chunks[1][0] ^= 1
		var ie *messages.IntegrityError
		require.ErrorAs(t, Verify(context.Background(), m, s, opts(2)), &ie)
		assert.Equal(t, messages.ReasonChunkRootMismatch, ie.Reason)
	})
}

func TestVerifyRetriesReads(t *testing.T) {
	bothPaths(t, func(t *testing.T, copyOut bool) {
		m := newSimMemory(t, copyOut, 4<<20)
		s := m.seal(t, "flaky", cudatest.Pattern(1, int64(chunkSize)))
		m.sim.FailReads(2)
		assert.NoError(t, Verify(context.Background(), m, s, opts(1)))
		m.sim.FailReads(3)
		err := Verify(context.Background(), m, s, opts(1))
		assert.ErrorIs(t, err, messages.ErrDeviceFault)
		assert.True(t, messages.IsFatal(err))
	})
}

func TestVerifyStopsWithItsContext(t *testing.T) {
	bothPaths(t, func(t *testing.T, copyOut bool) {
		m := newSimMemory(t, copyOut, 4<<20)
		s := m.seal(t, "slow", cudatest.Pattern(1, int64(4*chunkSize)))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		assert.ErrorIs(t, Verify(ctx, m, s, opts(2)), context.Canceled)
	})
}

func TestVerifyAllPoolsChunksAcrossShards(t *testing.T) {
	bothPaths(t, func(t *testing.T, copyOut bool) {
		m := newSimMemory(t, copyOut, 8<<20)
		var shards []Shard
		for i, size := range []int{100, chunkSize, 3*chunkSize + 1, 7} {
			shards = append(shards, m.seal(t, fmt.Sprint("s", i), cudatest.Pattern(1, int64(size))))
		}
		m.gone["s2"] = true
		var mu sync.Mutex
		matched := map[string]int{}
		err := VerifyAll(context.Background(), m, shards, opts(3), func(i int) {
			mu.Lock()
			defer mu.Unlock()
			matched[shards[i].Record.ID]++
		})
		require.NoError(t, err)
		assert.Equal(t, map[string]int{"s0": 1, "s1": 1, "s3": 1}, matched, "each live shard once; the freed one skipped")
		require.NoError(t, m.sim.FlipBit(m.handles["s3"], 3, 0))
		var ie *messages.IntegrityError
		require.ErrorAs(t, VerifyAll(context.Background(), m, shards, opts(3), func(int) {}), &ie)
		assert.Equal(t, "s3", ie.ShardID)
	})
}

// bothPaths runs test on the in-place path (the Sim hashes) and on the
// copy-out path.
func bothPaths(t *testing.T, test func(t *testing.T, copyOut bool)) {
	t.Run("in place", func(t *testing.T) { test(t, false) })
	t.Run("copied out", func(t *testing.T) { test(t, true) })
}

// panickingMemory is memory whose read leases panic, as a bug would.
type panickingMemory struct{ *simMemory }

func (panickingMemory) LeaseRead(string, uint64) (cuda.Handle, func(), error) {
	panic("injected lease panic")
}

func TestAWorkerPanicIsASoftwareFault(t *testing.T) {
	bothPaths(t, func(t *testing.T, copyOut bool) {
		m := newSimMemory(t, copyOut, 4<<20)
		s := m.seal(t, "a", cudatest.Pattern(1, int64(3*chunkSize)))
		err := Verify(context.Background(), panickingMemory{m}, s, opts(2))
		assert.ErrorIs(t, err, messages.ErrSoftwareFault, "the panic ends the re-hash as a software fault, not the process")
	})
}

// meetingMemory is memory whose first two read leases are granted only
// once both have been asked for: a re-hash that waited for one batch to end
// before it leased for the next would never get them.
type meetingMemory struct {
	*simMemory
	asked  atomic.Int32
	bothIn chan struct{}
}

func (m *meetingMemory) LeaseRead(id string, gen uint64) (cuda.Handle, func(), error) {
	switch m.asked.Add(1) {
	case 1:
		select {
		case <-m.bothIn:
		case <-time.After(10 * time.Second):
			return 0, nil, errors.New("no second lease was asked for while the first batch waited")
		}
	case 2:
		close(m.bothIn)
	}
	return m.simMemory.LeaseRead(id, gen)
}

func TestInPlaceLeasesTheNextBatchWhileOneIsInFlight(t *testing.T) {
	m := newSimMemory(t, false, 8<<20)
	var shards []Shard
	for i := range 4 {
		shards = append(shards, m.seal(t, fmt.Sprint("s", i), cudatest.Pattern(1, int64(chunksPerWorker*chunkSize))))
	}
	meeting := &meetingMemory{simMemory: m, bothIn: make(chan struct{})}
	var matched atomic.Int32
	require.NoError(t, VerifyAll(context.Background(), meeting, shards, opts(1), func(int) { matched.Add(1) }))
	assert.Equal(t, int32(len(shards)), matched.Load(), "every shard matched, one batch each")
	assert.Zero(t, m.open, "every read lease ended")
}

// batchingSim is a Sim that, as a GPU does, asks for batches of batch
// chunks, and counts the HashSpans calls it gets.
type batchingSim struct {
	*cuda.Sim
	batch int64
	calls atomic.Int32
}

func (b *batchingSim) BatchChunks() int64 { return b.batch }

func (b *batchingSim) HashSpans(spans []cuda.Span) ([][][sha256.Size]byte, error) {
	b.calls.Add(1)
	return b.Sim.HashSpans(spans)
}

// batchingMemory is a simMemory whose device is a batchingSim.
type batchingMemory struct {
	*simMemory
	dev *batchingSim
}

func (m *batchingMemory) Device() cuda.Device { return m.dev }

func TestInPlaceBatchesAsTheDeviceAsks(t *testing.T) {
	m := newSimMemory(t, false, 8<<20)
	var shards []Shard
	for i := range 40 {
		shards = append(shards, m.seal(t, fmt.Sprint("s", i), cudatest.Pattern(1, int64(2*chunkSize+1))))
	}
	for _, tc := range []struct {
		name      string
		batch     int64
		workers   int
		wantCalls int32
	}{
		{"a device's batch: every chunk in one call", 1 << 16, 1, 1},
		{"a device's batch of 50 chunks", 50, 1, 3},
		{"no batch asked for: two chunks a worker", 0, 2, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := &batchingSim{Sim: m.sim, batch: tc.batch}
			var matched atomic.Int32
			require.NoError(t, VerifyAll(context.Background(), &batchingMemory{simMemory: m, dev: dev}, shards, opts(tc.workers),
				func(int) { matched.Add(1) }))
			assert.Equal(t, int32(len(shards)), matched.Load())
			assert.Equal(t, tc.wantCalls, dev.calls.Load(), "%d chunks in calls of %d", 3*len(shards), batchLimit(dev, tc.workers))
		})
	}
}
