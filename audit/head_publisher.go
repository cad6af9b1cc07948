package audit

import (
	"context"
	"sync"
	"time"
)

// DefaultHeadInterval is how often, at the longest, a HeadPublisher lets a
// log's head change without publishing it, when HeadConfig.Interval is 0.
const DefaultHeadInterval = time.Minute

// headQuiet is how long a changed head must stay the same for the
// publisher to publish it before its interval is up: a burst of records
// (a seal, a scrub pass) is published once it is over.
const headQuiet = time.Second

// HeadConfig configures PublishHeads.
type HeadConfig struct {
	// Publish is given every head published, one at a time, in order of
	// seq; required. It must not block for long: a critical record's
	// caller waits for it.
	Publish func(Head)
	// Interval bounds how long a changed head goes unpublished while
	// records are written; 0 means DefaultHeadInterval.
	Interval time.Duration
}

// HeadPublisher publishes a Log's head to somewhere off the host (a log
// line, an endpoint, a metric), so that records cut from the end of the log
// are caught against a head published before the cut. It publishes when
// told (Publish: at start), at least once an Interval while the head
// changes, once a second after a burst of records ends, after every
// critical record written through it (it is a Sink), and at Close. It owns
// one goroutine, which Close stops and waits for.
type HeadPublisher struct {
	log      *Log
	publish  func(Head)
	interval time.Duration
	stop     chan struct{}
	wg       sync.WaitGroup

	mu     sync.Mutex
	last   Head      // the last head published
	lastAt time.Time // when
	closed bool
}

var _ Sink = (*HeadPublisher)(nil)

// PublishHeads starts publishing l's head as cfg says. It publishes
// nothing until the first Publish, Record or tick; call Publish once the
// worker has started.
func PublishHeads(l *Log, cfg HeadConfig) *HeadPublisher {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultHeadInterval
	}
	p := &HeadPublisher{log: l, publish: cfg.Publish, interval: cfg.Interval, stop: make(chan struct{}), lastAt: time.Now()}
	p.wg.Add(1)
	go p.run()
	return p
}

// Record writes r to the log and, when r is critical and durable,
// publishes the head that holds it before returning.
func (p *HeadPublisher) Record(ctx context.Context, r Record) error {
	err := p.log.Record(ctx, r)
	if err == nil && r.Severity == SeverityCritical {
		p.Publish()
	}
	return err
}

// Publish publishes the log's head now, unless it was published already.
func (p *HeadPublisher) Publish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.publishLocked(p.log.Head(), false)
}

// publishLocked publishes h if it is news, or if force, and it names a
// record. p.mu is held.
func (p *HeadPublisher) publishLocked(h Head, force bool) {
	if h.Seq == 0 || h.Seq < p.last.Seq || (h.Seq == p.last.Seq && !force) {
		return
	}
	p.last, p.lastAt = h, time.Now()
	p.publish(h)
}

// run publishes a changed head once it has been quiet for headQuiet, or
// once Interval has passed since the last publication.
func (p *HeadPublisher) run() {
	defer p.wg.Done()
	tick := time.NewTicker(min(headQuiet, p.interval))
	defer tick.Stop()
	var seen uint64 // the head's seq at the last tick
	for {
		select {
		case <-p.stop:
			return
		case now := <-tick.C:
			h := p.log.Head()
			p.mu.Lock()
			if h.Seq > p.last.Seq && (h.Seq == seen || now.Sub(p.lastAt) >= p.interval) {
				p.publishLocked(h, false)
			}
			p.mu.Unlock()
			seen = h.Seq
		}
	}
}

// Close stops the publisher, waits for its goroutine, and publishes the
// log's head one last time, whether or not it changed: call it once the
// log is closed, so that the last head published is the log's last
// record. Later calls do nothing.
func (p *HeadPublisher) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.publishLocked(p.log.Head(), true)
}
