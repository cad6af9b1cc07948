package cuda

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/vramseal/vramseal/messages"
)

// memfdSeals are the seals a shareable Sim allocation's memfd carries once
// mapped: its size is fixed, and no new writable mapping or write(2) is
// allowed, while the Sim's own mapping, made before, stays writable (for
// seals, scrubbing and planted faults).
const memfdSeals = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_FUTURE_WRITE | unix.F_SEAL_SEAL

// newMemfd returns size bytes of host memory backed by a memfd of their own,
// mapped read-write by the Sim and sealed against every other writer.
func newMemfd(size int64) (simMemory, error) {
	fd, err := unix.MemfdCreate("vramseal-shard", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return simMemory{}, fmt.Errorf("sim: allocate %d shareable bytes: memfd_create: %w: %w", size, err, messages.ErrAllocationFailed)
	}
	f := os.NewFile(uintptr(fd), "vramseal-shard")
	fail := func(step string, err error) (simMemory, error) {
		f.Close()
		return simMemory{}, fmt.Errorf("sim: allocate %d shareable bytes: %s: %w: %w", size, step, err, messages.ErrAllocationFailed)
	}
	mapSize := pageAligned(size)
	if err := unix.Ftruncate(fd, mapSize); err != nil {
		return fail("ftruncate", err)
	}
	mapping, err := unix.Mmap(fd, 0, int(mapSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail("mmap", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, memfdSeals); err != nil {
		_ = unix.Munmap(mapping)
		return fail("seal", err)
	}
	return simMemory{data: mapping[:size:size], mapping: mapping, file: f}, nil
}

// releaseMemfd unmaps the Sim's mapping and closes its descriptor; the
// mappings other processes made stay valid until they unmap them.
func releaseMemfd(m simMemory) {
	_ = unix.Munmap(m.mapping)
	m.file.Close()
}

// shareMemfd opens the allocation's memfd again, read-only, so that the
// receiver can neither map it writable nor add seals.
func shareMemfd(m simMemory) (Shared, error) {
	f, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", m.file.Fd()), os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Shared{}, fmt.Errorf("sim: share: reopen read-only: %w: %w", err, messages.ErrAllocationFailed)
	}
	return Shared{File: f, Kind: ShareMemfd, MapSize: int64(len(m.mapping)), Offset: 0}, nil
}

// pageAligned rounds size up to the host's page size.
func pageAligned(size int64) int64 {
	page := int64(os.Getpagesize())
	return (size + page - 1) / page * page
}
