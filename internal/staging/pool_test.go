package staging

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPoolSizes(t *testing.T) {
	p := NewPool(1<<20, 4<<20)
	for _, tc := range []struct{ n, capacity int64 }{
		{1, 4 << 10}, {4 << 10, 4 << 10}, {4<<10 + 1, 8 << 10}, {100 << 10, 128 << 10}, {1 << 20, 1 << 20},
	} {
		b, err := p.Get(context.Background(), tc.n)
		require.NoError(t, err)
		assert.Len(t, b.Bytes, int(tc.n))
		assert.Equal(t, int(tc.capacity), cap(b.Bytes), "n=%d", tc.n)
		p.Put(b)
	}
	for _, n := range []int64{0, -1, 1<<20 + 1} {
		_, err := p.Get(context.Background(), n)
		assert.Error(t, err, "n=%d", n)
	}
}

func TestPoolBoundsTheBytesOut(t *testing.T) {
	p := NewPool(1<<20, 2<<20)
	a, err := p.Get(context.Background(), 1<<20)
	require.NoError(t, err)
	b, err := p.Get(context.Background(), 1<<20)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = p.Get(ctx, 1)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "the budget is spent")

	got := make(chan *Buffer)
	go func() {
		c, err := p.Get(context.Background(), 1<<20)
		assert.NoError(t, err)
		got <- c
	}()
	p.Put(a)
	c := <-got
	p.Put(b)
	p.Put(c)
}
