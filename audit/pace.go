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
// So while the CPU is saturated with other work, and only then, the writer
// lets the next batch grow before its fsync: it syncs at most one pace-th
// of the time, waiting after an fsync until pace x (its usual fsync time)
// has passed since that fsync began, maxLinger at most, or until the queue
// fills or closes, or the CPU has room again. Saturated with other work
// means goroutines wait for a P besides the callers the writer has just
// woken and not yet heard from again: then records wait for a CPU anyway,
// and the fsyncs saved are CPU the other goroutines get. Callers that do
// little but record, on the other hand, have nothing to do while the
// writer waits for them. On a CPU with room to spare the writer syncs as
// soon as a record is queued, so a lone caller never waits for company.
// PostgreSQL's commit_delay, which waits only when enough other
// transactions are active, is the same idea.

// pace is how many fsync times at least lie between the starts of two
// fsyncs while the CPU is saturated.
const pace = 4

// pacing says how the writer decides to let a batch grow.
type pacing struct {
	// waiting counts the goroutines waiting for a P; waitingForCPU outside
	// tests.
	waiting func() int
	// maxLinger bounds a wait, whatever the fsyncs took.
	maxLinger time.Duration
}

// defaultPacing is the pacing of every Log that Open opens.
var defaultPacing = pacing{waiting: waitingForCPU, maxLinger: 2 * time.Millisecond}

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

// saturated reports whether goroutines besides own wait for every P.
func (p *pacer) saturated(own int) bool {
	return p.waiting()-own >= runtime.GOMAXPROCS(0)
}

// linger lets the next batch in q grow while its fsync is not yet due and
// the CPU is saturated with work other than the woken callers the writer
// has just answered: it waits until the fsync is due, q fills or closes,
// or the CPU has room again. An empty queue has nothing to let grow.
func (p *pacer) linger(q *queue, woken int) {
	start, full, closed := q.state()
	if start == 0 || full || closed {
		return
	}
	now := time.Now()
	d := p.window(now)
	if d == 0 || !p.saturated(woken) {
		return
	}
	due := now.Add(d)
	check := min(max(p.syncTime/4, minCheck), maxCheck)
	defer p.timer.Stop()
	for {
		p.timer.Reset(min(check, time.Until(due)))
		select {
		case <-p.timer.C:
			queued, _, _ := q.state()
			// The woken callers not heard from again, as if every record
			// that came since were one of theirs.
			own := max(0, woken-(queued-start))
			if !time.Now().Before(due) || !p.saturated(own) {
				return
			}
		case <-q.ready:
			if _, full, closed := q.state(); full || closed {
				return
			}
		}
	}
}

// How often a linger looks again whether the CPU is saturated: a quarter
// of an fsync time, within these bounds.
const (
	minCheck = 20 * time.Microsecond
	maxCheck = 200 * time.Microsecond
)

// cpuWanted reports whether any goroutine waits for a P.
func cpuWanted() bool { return waitingForCPU() > 0 }

// runnableSample names the count of goroutines waiting for a P.
const runnableSample = "/sched/goroutines/runnable:goroutines"

// waitingForCPU is the number of goroutines waiting for a P, or 0 where
// the runtime does not say.
func waitingForCPU() int {
	s := []metrics.Sample{{Name: runnableSample}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int(s[0].Value.Uint64())
}
