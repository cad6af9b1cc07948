// Package staging holds the host buffers that data passes through on its way
// to and from device memory, bounded so that sealing and verifying hold a few
// chunks of host memory at a time however large the shards.
package staging

import (
	"context"
	"fmt"
	"math/bits"
	"sync"

	"golang.org/x/sync/semaphore"
)

// minBufferClass is the smallest staging buffer handed out, in bytes.
const minBufferClass = 4 << 10

// Buffer is a staging buffer from a Pool.
type Buffer struct {
	// Bytes holds the length asked for.
	Bytes []byte
	full  []byte
	class int
}

// Pool hands out host staging buffers for copies to and from devices,
// so that sealing and verifying hold a few chunks of host memory at a time
// however large the shards and however many the callers. Buffers come in
// power-of-two sizes from 4 KiB to the chunk size, so a small seal does not
// take a whole chunk, and the bytes out at once are bounded: Get waits while
// the budget is spent.
type Pool struct {
	chunkSize int64
	classes   []sync.Pool // class i holds buffers of minBufferClass<<i bytes
	budget    *semaphore.Weighted
}

// NewPool returns a pool of buffers of at most chunkSize bytes, with at
// most maxBytes (at least one chunk) handed out at once.
func NewPool(chunkSize, maxBytes int64) *Pool {
	n := classOf(chunkSize) + 1
	p := &Pool{chunkSize: chunkSize, classes: make([]sync.Pool, n), budget: semaphore.NewWeighted(max(maxBytes, chunkSize))}
	for i := range p.classes {
		size := classSize(i)
		p.classes[i].New = func() any { return &Buffer{full: make([]byte, size), class: i} }
	}
	return p
}

// ChunkSize is the largest buffer the pool hands out.
func (p *Pool) ChunkSize() int64 { return p.chunkSize }

// Get returns a buffer of n bytes (1 <= n <= ChunkSize), waiting while the
// pool's budget is spent, or ctx's error.
func (p *Pool) Get(ctx context.Context, n int64) (*Buffer, error) {
	if n < 1 || n > p.chunkSize {
		return nil, fmt.Errorf("staging buffer of %d bytes: want 1 to %d", n, p.chunkSize)
	}
	class := classOf(n)
	if err := p.budget.Acquire(ctx, classSize(class)); err != nil {
		return nil, context.Cause(ctx)
	}
	b := p.classes[class].Get().(*Buffer)
	b.Bytes = b.full[:n]
	return b, nil
}

// Put returns a buffer to the pool.
func (p *Pool) Put(b *Buffer) {
	b.Bytes = nil
	p.classes[b.class].Put(b)
	p.budget.Release(classSize(b.class))
}

// classOf is the smallest class whose buffers hold n bytes.
func classOf(n int64) int {
	if n <= minBufferClass {
		return 0
	}
	return bits.Len64(uint64(n-1)) - bits.Len64(minBufferClass-1)
}

func classSize(class int) int64 { return minBufferClass << class }
