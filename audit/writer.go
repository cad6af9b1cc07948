package audit

import "fmt"

// run is the writer goroutine: it takes every record waiting, writes them
// as one batch, and answers each caller once the batch is durable. After
// stop it writes what is still queued, then returns.
func (l *Log) run() {
	defer l.wg.Done()
	batch := make([]*pending, 0, cap(l.queue))
	for {
		batch = batch[:0]
		select {
		case p := <-l.queue:
			batch = append(batch, p)
		case <-l.stop:
		}
		batch = l.fill(batch)
		if len(batch) == 0 {
			return // stopped, and nothing is left
		}
		l.inflight.Store(int64(len(batch)))
		l.commit(batch)
	}
}

// fill adds to batch the records already queued, without waiting.
func (l *Log) fill(batch []*pending) []*pending {
	for len(batch) < cap(batch) {
		select {
		case p := <-l.queue:
			batch = append(batch, p)
		default:
			return batch
		}
	}
	return batch
}

// commit writes batch and answers its callers.
func (l *Log) commit(batch []*pending) {
	if err := l.failure(); err != nil {
		l.answer(batch, err)
		return
	}
	if l.mode == SyncEach {
		for i := range batch {
			if err := l.write(batch[i : i+1]); err != nil {
				l.answer(batch[i:], err)
				return
			}
			l.answer(batch[i:i+1], nil)
		}
		return
	}
	l.answer(batch, l.write(batch))
}

// write appends the lines of batch in one write, then fsyncs unless the
// mode is NoSync. A failure makes the log failed.
func (l *Log) write(batch []*pending) error {
	l.buf = l.buf[:0]
	for _, p := range batch {
		l.seq++
		l.buf = l.chain.appendLine(l.buf, l.seq, l.now(), p.tail)
	}
	n, err := l.file.Write(l.buf)
	l.stats.writes.Add(1)
	l.stats.bytes.Add(uint64(n))
	if err == nil && l.mode != NoSync {
		err = l.file.Sync()
		l.stats.syncs.Add(1)
	}
	if err != nil {
		l.failed.Store(&err)
		return fmt.Errorf("audit: write log %s: %w", l.path, err)
	}
	l.stats.records.Add(uint64(len(batch)))
	l.stats.lastSeq.Store(l.seq)
	return nil
}

// answer gives err (nil: durable) to every caller in batch.
func (l *Log) answer(batch []*pending, err error) {
	l.inflight.Add(-int64(len(batch)))
	for _, p := range batch {
		p.done <- err
	}
}
