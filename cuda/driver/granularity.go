package driver

// pageSize is the granularity in which CUDA's allocator takes device
// memory: 2 MiB pages on every GPU the backend supports, into which it packs
// smaller cuMemAlloc allocations. Free memory (cuMemGetInfo) moves by whole
// pages.
const pageSize = 2 << 20

// AllocationGranularity returns the size of the pages device memory is
// taken in, so that a check of free memory knows how far it may stray from
// the bytes allocated: on a device opened WithShareable, the granularity
// its allocations are rounded up to.
func (d *Device) AllocationGranularity() int64 {
	if d.Shareable() {
		return d.granularity
	}
	return pageSize
}
