package cuda_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/cuda/cudatest"
	"github.com/vramseal/vramseal/messages"
)

// newSim returns a Sim that the test closes when it ends.
func newSim(t testing.TB, capacity, seed int64) *cuda.Sim {
	t.Helper()
	return newSimWith(t, cuda.SimConfig{Capacity: capacity, Seed: seed})
}

// newSimWith returns a Sim configured by cfg that the test closes when it
// ends.
func newSimWith(t testing.TB, cfg cuda.SimConfig) *cuda.Sim {
	t.Helper()
	s, err := cuda.NewSim(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s
}

// memoryModes names the ways a Sim gets host memory.
var memoryModes = []struct {
	name                string
	prefault, shareable bool
}{{"fresh memory", false, false}, {"prefaulted arena", true, false}, {"shareable memfds", false, true}}

// allocateFilled allocates len(data) bytes and writes data into them.
func allocateFilled(t *testing.T, s *cuda.Sim, data []byte) cuda.Handle {
	t.Helper()
	h, err := s.Allocate(int64(len(data)))
	require.NoError(t, err)
	require.NoError(t, s.Write(h, 0, data))
	return h
}

// contents reads the whole allocation.
func contents(t *testing.T, s cuda.Device, h cuda.Handle, size int64) []byte {
	t.Helper()
	p := make([]byte, size)
	require.NoError(t, s.Read(h, 0, p))
	return p
}

func TestSimContract(t *testing.T) {
	for _, mode := range memoryModes {
		t.Run(mode.name, func(t *testing.T) {
			cudatest.Run(t, func(t *testing.T) cuda.Device {
				// 16 MiB: the suite's largest need, each device prefaulted
				// in full.
				s, err := cuda.NewSim(cuda.SimConfig{Capacity: 16 << 20, Seed: 1, Prefault: mode.prefault, Shareable: mode.shareable})
				require.NoError(t, err)
				return s
			})
		})
	}
}

func TestNewSim(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      cuda.SimConfig
		wantErr  error
		wantName string
	}{
		{"zero capacity", cuda.SimConfig{}, messages.ErrConfig, ""},
		{"negative capacity", cuda.SimConfig{Capacity: -1}, messages.ErrConfig, ""},
		{"default name", cuda.SimConfig{Capacity: 1 << 20}, nil, cuda.DefaultSimName},
		{"given name", cuda.SimConfig{Name: "test GPU", Capacity: 1}, nil, "test GPU"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := cuda.NewSim(tc.cfg)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
				assert.Nil(t, s)
				return
			}
			require.NoError(t, err)
			defer func() { assert.NoError(t, s.Close()) }()
			props := s.Properties()
			assert.Equal(t, tc.wantName, props.Name)
			assert.Equal(t, tc.cfg.Capacity, props.TotalMemory)
			assert.Equal(t, 9, props.ComputeMajor)
			assert.Equal(t, 0, props.ComputeMinor)
			assert.False(t, props.Integrated)
			assert.False(t, props.ManagedMemory)
			assert.False(t, props.PageableMemoryAccess)
			assert.Regexp(t, `^GPU-SIM-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`, props.UUID)
		})
	}
}

func TestSimUUID(t *testing.T) {
	uuid := func(name string, seed int64) string {
		s, err := cuda.NewSim(cuda.SimConfig{Name: name, Capacity: 1, Seed: seed})
		require.NoError(t, err)
		defer func() { assert.NoError(t, s.Close()) }()
		return s.Properties().UUID
	}
	assert.Equal(t, uuid("a", 1), uuid("a", 1), "same name and seed")
	assert.NotEqual(t, uuid("a", 1), uuid("a", 2), "another seed")
	assert.NotEqual(t, uuid("a", 1), uuid("b", 1), "another name")
}

func TestSimAllocations(t *testing.T) {
	s := newSim(t, 1<<20, 1)
	var want []cuda.AllocInfo
	for _, size := range []int64{100, 1, 4096, 7} {
		h, err := s.Allocate(size)
		require.NoError(t, err)
		want = append(want, cuda.AllocInfo{Handle: h, Size: size})
	}
	assert.Equal(t, want, s.Allocations())
	assert.Equal(t, len(want), s.Outstanding())

	require.NoError(t, s.Free(want[1].Handle))
	want = append(want[:1], want[2:]...)
	assert.Equal(t, want, s.Allocations())
	assert.Equal(t, len(want), s.Outstanding())

	require.NoError(t, s.Close())
	assert.Empty(t, s.Allocations())
	assert.Zero(t, s.Outstanding())
}

func TestSimCapacityExact(t *testing.T) {
	const capacity = 1 << 20
	for _, tc := range []struct {
		name  string
		sizes []int64
		fits  bool
	}{
		{"exactly the capacity", []int64{capacity}, true},
		{"one byte over", []int64{capacity + 1}, false},
		{"split exactly", []int64{capacity - 1, 1}, true},
		{"split one byte over", []int64{capacity - 1, 1, 1}, false},
		{"many small, exactly", []int64{capacity / 4, capacity / 4, capacity / 4, capacity / 4}, true},
	} {
		for _, mode := range memoryModes {
			t.Run(tc.name+", "+mode.name, func(t *testing.T) {
				s := newSimWith(t, cuda.SimConfig{Capacity: capacity, Seed: 1, Prefault: mode.prefault, Shareable: mode.shareable})
				var err error
				var held int64
				for _, size := range tc.sizes {
					if _, err = s.Allocate(size); err != nil {
						break
					}
					held += size
				}
				if tc.fits {
					assert.NoError(t, err)
				} else {
					assert.ErrorIs(t, err, messages.ErrInsufficientVRAM)
				}
				free, total, err := s.MemInfo()
				require.NoError(t, err)
				assert.Equal(t, int64(capacity), total)
				assert.Equal(t, capacity-held, free)
			})
		}
	}
}

func TestSimCapacityUnderConcurrency(t *testing.T) {
	for _, mode := range memoryModes {
		t.Run(mode.name, func(t *testing.T) { testSimCapacityUnderConcurrency(t, mode.prefault) })
	}
}

// testSimCapacityUnderConcurrency races allocations and frees of random
// sizes; with an arena, fragmentation forces some onto fresh memory.
func testSimCapacityUnderConcurrency(t *testing.T, prefault bool) {
	const (
		capacity = 1 << 20
		workers  = 64
		ops      = 40
		maxSize  = 64 << 10
	)
	s := newSimWith(t, cuda.SimConfig{Capacity: capacity, Seed: 1, Prefault: prefault})
	var (
		wg           sync.WaitGroup
		mu           sync.Mutex
		kept         = map[cuda.Handle]int64{}
		insufficient int
	)
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			mine := map[cuda.Handle]int64{}
			short := 0
			for range ops {
				if len(mine) > 0 && r.IntN(3) == 0 {
					for h := range mine {
						assert.NoError(t, s.Free(h))
						delete(mine, h)
						break
					}
				} else {
					size := 1 + r.Int64N(maxSize)
					h, err := s.Allocate(size)
					switch {
					case err == nil:
						mine[h] = size
					case errors.Is(err, messages.ErrInsufficientVRAM):
						short++
					default:
						assert.NoError(t, err)
					}
				}
				free, total, err := s.MemInfo()
				assert.NoError(t, err)
				assert.GreaterOrEqual(t, free, int64(0), "never over capacity")
				assert.LessOrEqual(t, free, total)
			}
			mu.Lock()
			defer mu.Unlock()
			for h, size := range mine {
				kept[h] = size
			}
			insufficient += short
		})
	}
	wg.Wait()

	assert.Positive(t, insufficient, "the workers must have run out of memory at least once")
	var held int64
	got := map[cuda.Handle]int64{}
	for _, a := range s.Allocations() {
		got[a.Handle] = a.Size
		held += a.Size
	}
	assert.Equal(t, kept, got, "Allocations lists exactly the allocations kept")
	assert.Equal(t, len(kept), s.Outstanding())
	free, total, err := s.MemInfo()
	require.NoError(t, err)
	assert.Equal(t, total-held, free)
	assert.LessOrEqual(t, held, int64(capacity))

	require.NoError(t, s.Close())
	assert.Zero(t, s.Outstanding())
}

func TestSimFailAllocations(t *testing.T) {
	s := newSim(t, 1<<20, 1)
	s.FailAllocations(2)

	_, err := s.Allocate(0)
	assert.ErrorIs(t, err, messages.ErrInvalidInput, "an invalid request does not use up a failure")
	for i := range 2 {
		h, err := s.Allocate(4096)
		assert.ErrorIs(t, err, messages.ErrAllocationFailed, "allocation %d", i)
		assert.Zero(t, h)
	}
	assert.Zero(t, s.Outstanding(), "failed allocations hold nothing")
	free, _, err := s.MemInfo()
	require.NoError(t, err)
	assert.Equal(t, int64(1<<20), free)

	h, err := s.Allocate(4096)
	assert.NoError(t, err, "allocations recover after the injected failures")
	assert.NotZero(t, h)

	s.FailAllocations(5)
	s.FailAllocations(0)
	_, err = s.Allocate(4096)
	assert.NoError(t, err, "FailAllocations(0) disarms")
}

func TestSimFailWriteAfter(t *testing.T) {
	const size = 64
	original := cudatest.Pattern(1, int64(size))
	update := cudatest.Pattern(2, int64(size))
	for _, tc := range []struct {
		name        string
		limit       int64
		firstLen    int
		firstFails  bool
		secondLen   int // written at offset firstLen
		copiedTotal int
	}{
		{"crossing write copies up to the limit", 10, 6, false, 8, 10},
		{"limit on a write boundary", 6, 6, false, 8, 6},
		{"zero limit fails at once", 0, 5, true, 8, 0},
		{"limit beyond both writes", 100, 6, false, 8, 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, 1<<20, 1)
			h := allocateFilled(t, s, original)
			s.FailWriteAfter(tc.limit)

			err := s.Write(h, 0, update[:tc.firstLen])
			if tc.firstFails {
				assert.ErrorIs(t, err, cuda.ErrCopyFailed)
			} else {
				assert.NoError(t, err)
			}
			err = s.Write(h, int64(tc.firstLen), update[tc.firstLen:tc.firstLen+tc.secondLen])
			wantFail := tc.firstFails || tc.limit < int64(tc.firstLen+tc.secondLen)
			if wantFail {
				assert.ErrorIs(t, err, cuda.ErrCopyFailed)
			} else {
				assert.NoError(t, err)
			}

			want := bytes.Clone(original)
			copy(want, update[:tc.copiedTotal])
			assert.Equal(t, want, contents(t, s, h, size), "exactly the bytes before the limit are written")
			assert.NoError(t, s.Free(h), "the allocation can still be freed")
			assert.Zero(t, s.Outstanding())
		})
	}
}

func TestSimFailWriteAfterPersistsUntilDisarmed(t *testing.T) {
	s := newSim(t, 1<<20, 1)
	h := allocateFilled(t, s, make([]byte, 16))
	s.FailWriteAfter(4)
	assert.ErrorIs(t, s.Write(h, 0, []byte("abcdefgh")), cuda.ErrCopyFailed)
	assert.ErrorIs(t, s.Write(h, 8, []byte("x")), cuda.ErrCopyFailed, "later writes fail too")
	assert.NoError(t, s.Write(h, 8, nil), "an empty write copies nothing and succeeds")
	assert.Equal(t, []byte("abcd\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), contents(t, s, h, 16))

	s.FailWriteAfter(-1)
	assert.NoError(t, s.Write(h, 8, []byte("x")), "a negative limit disarms")
	assert.Equal(t, []byte("abcd\x00\x00\x00\x00x\x00\x00\x00\x00\x00\x00\x00"), contents(t, s, h, 16))
}

func TestSimFailReads(t *testing.T) {
	const size = 256
	data := cudatest.Pattern(3, int64(size))
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d failures", n), func(t *testing.T) {
			s := newSim(t, 1<<20, 1)
			h := allocateFilled(t, s, data)
			s.FailReads(n)

			assert.ErrorIs(t, s.Read(h, size, make([]byte, 1)), messages.ErrInvalidInput,
				"an invalid read does not use up a failure")
			for i := range n {
				p := make([]byte, size)
				assert.ErrorIs(t, s.Read(h, 0, p), cuda.ErrCopyFailed, "read %d", i)
				assert.Equal(t, make([]byte, size), p, "a failed read copies nothing")
			}
			assert.Equal(t, data, contents(t, s, h, size), "reads recover after %d failures", n)
		})
	}
}

func TestSimFlipBit(t *testing.T) {
	const size = 4096
	data := cudatest.Pattern(4, int64(size))
	for _, offset := range []int64{0, 1234, size - 1} {
		for bit := range uint(8) {
			t.Run(fmt.Sprintf("offset %d bit %d", offset, bit), func(t *testing.T) {
				s := newSim(t, 1<<20, 1)
				h := allocateFilled(t, s, data)
				require.NoError(t, s.FlipBit(h, offset, bit))

				want := bytes.Clone(data)
				want[offset] ^= 1 << bit
				assert.Equal(t, want, contents(t, s, h, size), "exactly that bit changed")

				require.NoError(t, s.FlipBit(h, offset, bit))
				assert.Equal(t, data, contents(t, s, h, size), "flipping twice restores the byte")
			})
		}
	}
}

func TestSimFlipBitRefuses(t *testing.T) {
	s := newSim(t, 1<<20, 1)
	h := allocateFilled(t, s, make([]byte, 16))
	freed := allocateFilled(t, s, make([]byte, 16))
	require.NoError(t, s.Free(freed))
	for _, tc := range []struct {
		name   string
		handle cuda.Handle
		offset int64
		bit    uint
	}{
		{"bit 8", h, 0, 8},
		{"negative offset", h, -1, 0},
		{"offset at the end", h, 16, 0},
		{"unknown handle", h + 100, 0, 0},
		{"freed handle", freed, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.ErrorIs(t, s.FlipBit(tc.handle, tc.offset, tc.bit), messages.ErrInvalidInput)
		})
	}
	assert.Equal(t, make([]byte, 16), contents(t, s, h, 16), "refused flips change nothing")
}

func TestSimFlipRandomBit(t *testing.T) {
	type flip struct {
		h      cuda.Handle
		offset int64
		bit    uint
	}
	flips := func(seed int64) []flip {
		s := newSim(t, 1<<20, seed)
		_, _, _, err := s.FlipRandomBit()
		require.ErrorIs(t, err, messages.ErrInvalidInput, "nothing allocated")

		model := map[cuda.Handle][]byte{}
		for i, size := range []int{4096, 100, 1 << 16} {
			data := cudatest.Pattern(uint64(i), int64(size))
			model[allocateFilled(t, s, data)] = data
		}
		var got []flip
		for range 8 {
			h, offset, bit, err := s.FlipRandomBit()
			require.NoError(t, err)
			require.Contains(t, model, h)
			require.Less(t, bit, uint(8))
			model[h][offset] ^= 1 << bit
			got = append(got, flip{h, offset, bit})
		}
		for h, want := range model {
			assert.Equal(t, want, contents(t, s, h, int64(len(want))), "exactly the reported bits flipped")
		}
		return got
	}
	assert.Equal(t, flips(42), flips(42), "the same seed flips the same bits")
	assert.NotEqual(t, flips(42), flips(43), "another seed flips other bits")
}

func TestSimLose(t *testing.T) {
	s := newSim(t, 1<<20, 1)
	h := allocateFilled(t, s, make([]byte, 64))
	s.Lose()

	_, _, err := s.MemInfo()
	assert.ErrorIs(t, err, messages.ErrDeviceFault, "MemInfo")
	_, err = s.Allocate(1)
	assert.ErrorIs(t, err, messages.ErrDeviceFault, "Allocate")
	assert.ErrorIs(t, s.Write(h, 0, []byte{1}), messages.ErrDeviceFault, "Write")
	assert.ErrorIs(t, s.Read(h, 0, make([]byte, 1)), messages.ErrDeviceFault, "Read")
	assert.ErrorIs(t, s.FlipBit(h, 0, 0), messages.ErrDeviceFault, "FlipBit")
	_, _, _, err = s.FlipRandomBit()
	assert.ErrorIs(t, err, messages.ErrDeviceFault, "FlipRandomBit")
	assert.ErrorIs(t, s.Free(h), messages.ErrDeviceFault, "Free")

	assert.Equal(t, []cuda.AllocInfo{{Handle: h, Size: 64}}, s.Allocations(), "inspection still answers")
	assert.NotEmpty(t, s.Properties().Name)

	require.NoError(t, s.Close(), "Close works on a lost device")
	assert.Zero(t, s.Outstanding(), "Close freed everything")
	_, err = s.Allocate(1)
	assert.ErrorIs(t, err, messages.ErrStopped, "after Close")
}

func TestSimFreeRacingCopies(t *testing.T) {
	const size = 1 << 20
	s := newSim(t, 64<<20, 1)
	for round := range 20 {
		h, err := s.Allocate(size)
		require.NoError(t, err)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range 6 {
			wg.Go(func() {
				p := make([]byte, size)
				<-start
				for range 3 {
					var err error
					switch w % 3 {
					case 0:
						err = s.Write(h, 0, p)
					case 1:
						err = s.Read(h, 0, p)
					default:
						_, err = s.HashChunks(h, 0, size, size/4)
					}
					if err != nil {
						assert.ErrorIs(t, err, messages.ErrInvalidInput, "round %d: a copy or hash that loses the race sees a freed handle", round)
					}
				}
			})
		}
		wg.Go(func() {
			<-start
			assert.NoError(t, s.Free(h))
		})
		close(start)
		wg.Wait()
	}
	assert.Zero(t, s.Outstanding())
	free, _, err := s.MemInfo()
	require.NoError(t, err)
	assert.Equal(t, int64(64<<20), free)
}

func BenchmarkSimWrite(b *testing.B) {
	const size = 4 << 20
	s := newSim(b, size, 1)
	h, err := s.Allocate(size)
	require.NoError(b, err)
	p := cudatest.Pattern(1, int64(size))
	b.SetBytes(size)
	for b.Loop() {
		if err := s.Write(h, 0, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSimRead(b *testing.B) {
	const size = 4 << 20
	s := newSim(b, size, 1)
	h, err := s.Allocate(size)
	require.NoError(b, err)
	require.NoError(b, s.Write(h, 0, cudatest.Pattern(1, int64(size))))
	p := make([]byte, size)
	b.SetBytes(size)
	for b.Loop() {
		if err := s.Read(h, 0, p); err != nil {
			b.Fatal(err)
		}
	}
}
