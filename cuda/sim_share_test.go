package cuda_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
)

// openFiles counts this process's open descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(entries)
}

func TestSimShareNeedsAShareableSim(t *testing.T) {
	s := newSim(t, 1<<20, 1)
	h, err := s.Allocate(4096)
	require.NoError(t, err)
	_, err = s.Share(h)
	assert.ErrorIs(t, err, messages.ErrInvalidInput)
}

func TestSimShareSeesPlantedFaults(t *testing.T) {
	s := newSimWith(t, cuda.SimConfig{Capacity: 1 << 20, Shareable: true})
	h, err := s.Allocate(8192)
	require.NoError(t, err)
	shared, err := s.Share(h)
	require.NoError(t, err)
	defer shared.File.Close()
	m, err := unix.Mmap(int(shared.File.Fd()), 0, int(shared.MapSize), unix.PROT_READ, unix.MAP_SHARED)
	require.NoError(t, err)
	defer unix.Munmap(m)

	require.NoError(t, s.FlipBit(h, 5000, 3))
	assert.Equal(t, byte(1<<3), m[5000], "a planted bit flip, through another mapping")
}

func TestSimShareLeaksNoDescriptor(t *testing.T) {
	s := newSimWith(t, cuda.SimConfig{Capacity: 64 << 20, Shareable: true})
	before := openFiles(t)
	for range 50 {
		h, err := s.Allocate(1 << 20)
		require.NoError(t, err)
		shared, err := s.Share(h)
		require.NoError(t, err)
		require.NoError(t, shared.File.Close())
		require.NoError(t, s.Free(h))
	}
	_, err := s.Allocate(1 << 20) // Close must free this one's memfd
	require.NoError(t, err)
	require.NoError(t, s.Close())
	assert.Equal(t, before, openFiles(t), "open descriptors after 50 shared allocations and a Close")
}
