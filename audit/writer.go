package audit

import "time"

// run is the writer goroutine: it takes every record queued, writes them
// as one batch, and answers their callers once the batch is durable; the
// records that arrive meanwhile make the next batch, which with group
// commit may grow a little longer while the CPU is saturated (see pacer).
// After the queue is closed it writes what is still queued, then returns.
// While idle it checks every pathCheckInterval that its path still names
// its file.
func (l *Log) run() {
	defer l.wg.Done()
	spare := make([]encodedTail, 0, l.queue.limit)
	tick := time.NewTicker(pathCheckInterval)
	defer tick.Stop()
	for {
		tails, b, closed := l.queue.take(spare)
		if len(tails) == 0 {
			if closed {
				return
			}
			select {
			case <-l.queue.ready:
			case <-tick.C:
				if l.Err() == nil {
					l.checkPath()
				}
			}
			continue
		}
		l.inflight.Store(int64(len(tails)))
		l.commit(tails, b)
		clear(tails) // the queue reuses the slice; let the lines go
		spare = tails
		if l.mode == GroupCommit && l.failed.Load() == nil {
			l.pacer.linger(l.queue, len(tails))
		}
	}
}

// commit writes the records of b and answers their callers.
func (l *Log) commit(tails []encodedTail, b *batch) {
	defer func() {
		l.inflight.Store(0)
		close(b.done)
	}()
	if err := l.failure(); err != nil {
		b.err = err
		return
	}
	if l.mode == SyncEach {
		for i := range tails {
			if err := l.write(tails[i : i+1]); err != nil {
				b.err, b.failedFrom = err, i
				return
			}
		}
		return
	}
	b.err = l.write(tails)
}

// write checks that the path still names the log's file, appends the lines
// of tails in one write, then fsyncs unless the mode is NoSync. A failure
// makes the log failed and cuts what the write left.
func (l *Log) write(tails []encodedTail) error {
	if err := l.checkPath(); err != nil {
		return err
	}
	// The records of a batch are written at one time, read once.
	l.stamp = appendTime(l.stamp[:0], l.now())
	l.buf = l.buf[:0]
	for _, t := range tails {
		l.seq++
		l.buf = l.chain.appendLine(l.buf, l.seq, l.stamp, t)
		t.recycle()
	}
	n, err := l.file.Write(l.buf)
	l.stats.writes.Add(1)
	l.stats.bytes.Add(uint64(n))
	if err == nil && l.mode != NoSync {
		start := time.Now()
		err = l.file.Sync()
		l.pacer.synced(start, time.Since(start))
		l.stats.syncs.Add(1)
	}
	if err != nil {
		err = l.fail(err)
		l.undoBatch()
		return err
	}
	l.size += int64(n)
	l.stats.records.Add(uint64(len(tails)))
	l.stats.lastSeq.Store(l.seq)
	l.advanceHead()
	return nil
}
