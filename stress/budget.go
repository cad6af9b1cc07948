package stress

import "sync/atomic"

// budget is the seal attempts left in a run, shared by every caller of
// every runtime.
type budget struct{ left atomic.Int64 }

// take takes one attempt, or reports false when none is left.
func (b *budget) take() bool {
	for {
		n := b.left.Load()
		if n <= 0 {
			return false
		}
		if b.left.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// giveBack returns an attempt that was never made.
func (b *budget) giveBack() { b.left.Add(1) }

// remaining is the number of attempts left.
func (b *budget) remaining() int64 { return b.left.Load() }
