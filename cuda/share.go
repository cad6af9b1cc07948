package cuda

import (
	"io"
	"os"
)

// Sharer is an optional Device capability: allocations another process on
// the same host can map without a copy, and only read-only. A backend
// shares the allocations it was configured to make shareable
// (SimConfig.Shareable; cuda/driver's WithShareable option); Share on any
// other fails with messages.ErrInvalidInput.
type Sharer interface {
	// Shareable reports whether the device makes its allocations
	// shareable.
	Shareable() bool
	// Share returns a new descriptor of allocation h's memory, and where
	// the allocation lies in a mapping of it. The descriptor gives access
	// to that allocation's bytes and no other's; the caller owns it.
	Share(h Handle) (Shared, error)
}

// ShareKind names how another process maps a Shared descriptor.
type ShareKind string

const (
	// ShareMemfd is a sealed memfd in host memory (the Sim): map it with
	// mmap(PROT_READ, MAP_SHARED); a writable shared mapping, mprotect to
	// write, and write(2) all fail.
	ShareMemfd ShareKind = "memfd"
	// ShareCUDAVMM is a CUDA virtual memory allocation's POSIX descriptor
	// (cuMemExportToShareableHandle): import it with
	// cuMemImportFromShareableHandle, reserve, map and give read access
	// (CU_MEM_ACCESS_FLAGS_PROT_READ) in the device's primary context.
	ShareCUDAVMM ShareKind = "cuda-vmm-fd"
)

// Shared is one allocation's memory, as another process maps it.
type Shared struct {
	// File is the descriptor to pass (over a Unix socket, SCM_RIGHTS). The
	// caller closes it; the mappings others made of it stay valid.
	File *os.File
	// Kind says how to map File.
	Kind ShareKind
	// MapSize is how many bytes to map, from File's start.
	MapSize int64
	// Offset is where the allocation's bytes begin in that mapping: they
	// are [Offset, Offset+size).
	Offset int64
}

// SharedImporter is an optional Sharer capability, for descriptors only a
// driver can map (ShareCUDAVMM): mapping one read-only as another process
// would, so that a test or a check can read through it and try to write.
type SharedImporter interface {
	// ImportShared maps s read-only in this process. The caller closes the
	// mapping; s.File stays the caller's.
	ImportShared(s Shared) (SharedMapping, error)
}

// SharedMapping is a Shared descriptor mapped read-only. ReadAt copies bytes
// out of the mapping (offsets from its start, as Shared.Offset counts);
// WriteAt tries to write through it, which a read-only mapping refuses with
// an error; Close unmaps it.
type SharedMapping interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
}
