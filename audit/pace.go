package audit

import (
	"runtime"
	"runtime/metrics"
	"time"
)

// Pacing group commit.
//
// An fsync costs more than its wait. On a small virtual machine it burns
// about 140 µs of CPU in the kernel, and Go's scheduler leaves the writer's
// P (one of GOMAXPROCS) idle for the whole call, 0.3 ms or more, because a
// P blocked in a system call is handed to another thread only when sysmon
// notices, and a sysmon with little to do notices late or not at all. With
// a thousand callers on two cores, fsyncs back to back (one per 20-40
// records) cost the runtime half its seal throughput.
//
// So while the CPU is saturated, and only then, the writer lets the next
// batch grow before its fsync: it syncs at most one pace-th of the time,
// waiting after an fsync until pace x (its usual fsync time) has passed
// since that fsync began, maxLinger at most, or until the queue fills or
// closes. Saturated means goroutines wait for a P; then records wait for a
// CPU anyway and the fsyncs saved are CPU the callers get back. On a CPU
// with room to spare the writer syncs as soon as a record is queued, so a
// lone caller never waits for company. PostgreSQL's commit_delay, which
// waits only when enough other transactions are active, is the same idea.

// pace is how many fsync times at least lie between the starts of two
// fsyncs while the CPU is saturated.
const pace = 4

// pacing says how the writer decides to let a batch grow.
type pacing struct {
	// saturated reports whether the CPU is saturated; cpuSaturated outside
	// tests.
	saturated func() bool
	// maxLinger bounds a wait, whatever the fsyncs took.
	maxLinger time.Duration
}

// defaultPacing is the pacing of every Log that Open opens.
var defaultPacing = pacing{saturated: cpuSaturated, maxLinger: 2 * time.Millisecond}

// pacer is the writer's record of its fsyncs, and its timer. It is owned
// by the writer goroutine.
type pacer struct {
	pacing
	timer     *time.Timer
	lastStart time.Time     // when the last fsync began; zero before the first
	syncTime  time.Duration // moving average of fsync durations
}

func newPacer(p pacing) *pacer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &pacer{pacing: p, timer: t}
}

// synced records an fsync that began at start and took d.
func (p *pacer) synced(start time.Time, d time.Duration) {
	p.lastStart = start
	if p.syncTime == 0 {
		p.syncTime = d
		return
	}
	p.syncTime += (d - p.syncTime) / 8
}

// window is how long after now the next fsync is due: zero once pace x
// the usual fsync time has passed since the last one began, and never more
// than maxLinger.
func (p *pacer) window(now time.Time) time.Duration {
	if p.lastStart.IsZero() {
		return 0
	}
	due := p.lastStart.Add(pace * p.syncTime)
	return max(0, min(due.Sub(now), p.maxLinger))
}

// linger lets the next batch in q grow while its fsync is not yet due and
// the CPU is saturated: it waits until the fsync is due, or q fills or
// closes. An empty queue has nothing to let grow.
func (p *pacer) linger(q *queue) {
	if queued, full, closed := q.state(); queued == 0 || full || closed {
		return
	}
	d := p.window(time.Now())
	if d == 0 || !p.saturated() {
		return
	}
	p.timer.Reset(d)
	defer p.timer.Stop()
	for {
		select {
		case <-p.timer.C:
			return
		case <-q.ready:
			if _, full, closed := q.state(); full || closed {
				return
			}
		}
	}
}

// runnableSample names the count of goroutines waiting for a P.
const runnableSample = "/sched/goroutines/runnable:goroutines"

// cpuSaturated reports whether at least as many goroutines wait for a P as
// there are Ps.
func cpuSaturated() bool {
	s := []metrics.Sample{{Name: runnableSample}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return false
	}
	return s[0].Value.Uint64() >= uint64(runtime.GOMAXPROCS(0))
}
