package cudatest

import (
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/internal/fakecuda"
	"github.com/vramseal/vramseal/messages"
)

// testShare checks a shareable device's descriptors: each lies within its
// mapping, one of host memory maps read-only with the allocation's bytes
// and refuses every way to write, one of CUDA virtual memory imports
// (through the device's cuda.SharedImporter) read-only with the
// allocation's bytes and refuses a write, and a freed handle shares
// nothing. A
// Sharer not made shareable refuses to share. A device that is not a
// cuda.Sharer has nothing to check (the driver suite runs every test and
// allows no skip).
func testShare(t *testing.T, d cuda.Device) {
	sharer, ok := d.(cuda.Sharer)
	if !ok {
		t.Log("the device does not share allocations")
		return
	}
	const size = 100_003 // not a page multiple: the mapping is larger
	h := allocate(t, d, size)
	if !sharer.Shareable() {
		_, err := sharer.Share(h)
		assert.ErrorIs(t, err, messages.ErrInvalidInput, "Share on a device not made shareable")
		return
	}
	want := Pattern(31, size)
	require.NoError(t, d.Write(h, 0, want))

	s, err := sharer.Share(h)
	require.NoError(t, err, "Share")
	defer s.File.Close()
	assert.Contains(t, []cuda.ShareKind{cuda.ShareMemfd, cuda.ShareCUDAVMM}, s.Kind, "kind")
	assert.GreaterOrEqual(t, s.Offset, int64(0), "offset")
	assert.LessOrEqual(t, s.Offset+size, s.MapSize, "the allocation lies within the mapping")

	if s.Kind == cuda.ShareMemfd {
		checkReadOnlyMemfd(t, s, want)
		// The device's own writes reach the other mapping: it is the
		// same memory, not a copy.
		m, err := unix.Mmap(int(s.File.Fd()), 0, int(s.MapSize), unix.PROT_READ, unix.MAP_SHARED)
		require.NoError(t, err)
		defer unix.Munmap(m)
		require.NoError(t, d.Write(h, 7, []byte{^want[7]}))
		assert.Equal(t, ^want[7], m[s.Offset+7], "a write by the device, seen through the shared mapping")
	}
	if s.Kind == cuda.ShareCUDAVMM {
		importer, ok := d.(cuda.SharedImporter)
		require.True(t, ok, "a device sharing CUDA VMM descriptors is a cuda.SharedImporter")
		checkReadOnlyImport(t, d, importer, h, s, want)
	}

	require.NoError(t, d.Free(h))
	_, err = sharer.Share(h)
	assert.ErrorIs(t, err, messages.ErrInvalidInput, "Share of a freed handle")
}

// checkReadOnlyMemfd maps a shared memfd as another process would and checks
// it holds want at its offset, and that a writable shared mapping,
// mprotect to write and write(2) all fail.
func checkReadOnlyMemfd(t *testing.T, s cuda.Shared, want []byte) {
	t.Helper()
	fd := int(s.File.Fd())
	m, err := unix.Mmap(fd, 0, int(s.MapSize), unix.PROT_READ, unix.MAP_SHARED)
	require.NoError(t, err, "mapping the descriptor read-only")
	defer unix.Munmap(m)
	assert.Equal(t, want, m[s.Offset:s.Offset+int64(len(want))], "the shared bytes")

	if w, err := unix.Mmap(fd, 0, int(s.MapSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err == nil {
		unix.Munmap(w)
		t.Error("a writable shared mapping of the descriptor succeeded")
	}
	assert.Error(t, unix.Mprotect(m, unix.PROT_READ|unix.PROT_WRITE), "mprotect of the read-only mapping to write")
	_, err = unix.Pwrite(fd, []byte{1}, s.Offset)
	assert.Error(t, err, "write(2) through the descriptor")
	reopened, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(fd), os.O_RDWR, 0)
	if err == nil {
		defer reopened.Close()
		_, err = reopened.WriteAt([]byte{1}, s.Offset)
		assert.Error(t, err, "write(2) through the descriptor opened again read-write")
	}
}

// checkReadOnlyImport imports a shared CUDA VMM descriptor as another
// process would and checks it holds want at its offset and zeros past it,
// that the device's own writes reach it, and, over the stand-in libcuda
// only, that a write through the mapping is refused and changes nothing:
// on a GPU a refused write may leave the process's CUDA context unusable
// for the tests after it ("vramseal share check" tries it there, in a
// process of its own).
func checkReadOnlyImport(t *testing.T, d cuda.Device, importer cuda.SharedImporter, h cuda.Handle, s cuda.Shared, want []byte) {
	t.Helper()
	m, err := importer.ImportShared(s)
	require.NoError(t, err, "importing the descriptor")
	defer func() { assert.NoError(t, m.Close(), "closing the imported mapping") }()
	got := make([]byte, len(want))
	_, err = m.ReadAt(got, s.Offset)
	require.NoError(t, err, "reading through the imported mapping")
	assert.Equal(t, want, got, "the shared bytes")
	padding := make([]byte, s.MapSize-s.Offset-int64(len(want)))
	_, err = m.ReadAt(padding, s.Offset+int64(len(want)))
	require.NoError(t, err, "reading the mapping past the allocation")
	assert.Equal(t, make([]byte, len(padding)), padding, "the padding past the allocation is zeros, not an earlier allocation's bytes")

	one := make([]byte, 1)
	require.NoError(t, d.Write(h, 7, []byte{^want[7]}))
	_, err = m.ReadAt(one, s.Offset+7)
	require.NoError(t, err)
	assert.Equal(t, ^want[7], one[0], "a write by the device, seen through the imported mapping")

	if os.Getenv(fakecuda.Env) == "" {
		return
	}
	_, err = m.WriteAt([]byte{^want[3]}, s.Offset+3)
	assert.Error(t, err, "a write through the read-only mapping")
	_, err = m.ReadAt(one, s.Offset+3)
	require.NoError(t, err)
	assert.Equal(t, want[3], one[0], "the byte a refused write aimed at")
}
