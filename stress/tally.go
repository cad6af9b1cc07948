package stress

import "sync/atomic"

// faultTally counts, by kind, the faults injected into one runtime and the
// ones seen handled as they must be. Its map is filled once and only read
// after, so it is safe for concurrent use.
type faultTally map[string]*faultCounter

// faultCounter is one kind's counts.
type faultCounter struct{ injected, detected atomic.Int64 }

func newFaultTally() faultTally {
	t := faultTally{}
	for _, kind := range faultKinds {
		t[kind] = &faultCounter{}
	}
	return t
}

func (t faultTally) inject(kind string)        { t[kind].injected.Add(1) }
func (t faultTally) detect(kind string, n int) { t[kind].detected.Add(int64(n)) }

// counts returns the totals by kind.
func (t faultTally) counts() map[string]FaultCount {
	out := make(map[string]FaultCount, len(t))
	for kind, c := range t {
		out[kind] = FaultCount{Injected: int(c.injected.Load()), Detected: int(c.detected.Load())}
	}
	return out
}
