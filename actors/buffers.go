package actors

import "sync"

// BufferPool hands out staging buffers of one size, so that sealing and
// verifying hold only a few chunks of host memory at a time.
type BufferPool struct {
	size int64
	pool sync.Pool
}

// NewBufferPool returns a pool of buffers of size bytes.
func NewBufferPool(size int64) *BufferPool {
	p := &BufferPool{size: size}
	p.pool.New = func() any { b := make([]byte, size); return &b }
	return p
}

// Size is the length of every buffer in the pool.
func (p *BufferPool) Size() int64 { return p.size }

// Get returns a buffer of Size bytes.
func (p *BufferPool) Get() *[]byte { return p.pool.Get().(*[]byte) }

// Put returns a buffer to the pool.
func (p *BufferPool) Put(b *[]byte) { p.pool.Put(b) }
