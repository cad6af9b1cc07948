package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Log is the durable audit log: an append-only file of hash-chained JSON
// lines, written by one goroutine that commits concurrent records together.
// It is safe for concurrent use.
//
// A write or fsync that fails, or a path that no longer names the file (it
// was removed or replaced; checked before every batch, every second while
// idle, and at Close), leaves the log failed: the records of that batch
// return an error wrapping ErrLogFailed and the cause, the batch is cut from
// the file again where it can be, Failed closes, and every later Record
// fails too (wrapping messages.ErrStopped and the cause). Reopening the
// file checks it and continues it, cutting a torn last line.
type Log struct {
	path     string
	workerID string
	file     logFile
	queue    *queue
	wg       sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	head     atomic.Pointer[Head]  // the last durable record
	failed   atomic.Pointer[error] // the cause, once the log has failed
	failedC  chan struct{}         // closed when failed is set
	inflight atomic.Int64          // records taken by the writer and not yet answered
	stats    counters

	ident os.FileInfo // the file as opened, to tell if the path still names it

	// Owned by the writer goroutine.
	size  int64 // bytes of the file up to its last durable record
	chain *chain
	seq   uint64
	now   func() time.Time
	mode  SyncMode
	buf   []byte // the lines of a batch
	stamp []byte // the time of a batch, as its lines say it
	pacer *pacer
}

var _ Sink = (*Log)(nil)

// logFile is what the writer needs of the file; tests give it faults.
type logFile interface {
	Write(b []byte) (int, error)
	Sync() error
	Close() error
	Truncate(size int64) error
}

// Open opens the log at path, creating it (mode 0600) if need be, and starts
// its writer. An existing log is checked with the key and continued: a torn
// last line, left by a crash mid-write, is cut off and the cut recorded as
// an EventLogTruncated record; any other damage fails Open with
// messages.ErrIntegrityViolation. A log file that its group or others may
// access, or that another Log holds open (an exclusive flock), fails Open
// with messages.ErrConfig. Close stops the writer.
func Open(path string, cfg LogConfig) (*Log, error) {
	return open(path, cfg, func(f *os.File) logFile { return newSyncFile(f, cpuWanted) }, defaultPacing)
}

// open is Open with the writer's view of the file chosen by wrap, and its
// fsyncs paced as pc says.
func open(path string, cfg LogConfig, wrap func(*os.File) logFile, pc pacing) (*Log, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	f, found, err := openExisting(path, cfg.Key)
	if err != nil {
		return nil, err
	}
	ident, err := f.Stat()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("audit: stat log %s: %w", path, err), f.Close())
	}
	c := newChain(cfg.Key)
	c.prev = found.head
	l := &Log{
		path:     path,
		workerID: cfg.WorkerID,
		file:     wrap(f),
		queue:    newQueue(cfg.QueueSize),
		failedC:  make(chan struct{}),
		ident:    ident,
		size:     ident.Size(),
		chain:    c,
		seq:      found.lastSeq,
		now:      cfg.Now,
		mode:     cfg.Sync,
		pacer:    newPacer(pc),
	}
	l.stats.lastSeq.Store(found.lastSeq)
	l.head.Store(foundHead(cfg.WorkerID, found.scanResult))
	l.wg.Add(1)
	go l.run()
	cfg.Logger.Info("audit log opened", "path", path, "records", found.Records, "sync", cfg.Sync.String(), "key", cfg.Key.Fingerprint())
	if found.unterminated {
		cfg.Logger.Warn("audit log's last record lacked its newline; kept it and ended it", "path", path, "seq", found.lastSeq)
	}
	if found.cut > 0 {
		cfg.Logger.Warn("audit log had a torn last line; cut it", "path", path, "bytes_cut", found.cut, "after_seq", found.lastSeq)
		err := l.Record(context.Background(), Record{
			Event:    EventLogTruncated,
			Severity: SeverityWarning,
			Fields:   map[string]any{"bytes_cut": found.cut, "after_seq": found.lastSeq},
		})
		if err != nil {
			return nil, errors.Join(err, l.Close())
		}
	}
	return l, nil
}

// Record appends r to the log and returns once it is on disk (see
// SyncMode). When the queue is full it waits, for ctx at most; nothing is
// dropped. After Close it returns messages.ErrStopped. If ctx ends while the
// record waits to be written, Record returns ctx's error and the record may
// still be written.
func (l *Log) Record(ctx context.Context, r Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tail, err := encodeTail(l.workerID, r)
	if err != nil {
		return err
	}
	if err := l.failure(); err != nil {
		return err
	}
	b, i, err := l.queue.put(ctx, tail)
	if err != nil {
		return err
	}
	if ctx.Done() == nil { // a context that never ends, as the seal's record is written with
		<-b.done
		return b.result(i)
	}
	select {
	case <-b.done:
		return b.result(i)
	case <-ctx.Done():
		return fmt.Errorf("audit: %s record not yet durable: %w", r.Event, ctx.Err())
	}
}

// failure is the sticky error of a failed log, or nil.
func (l *Log) failure() error {
	if cause := l.Err(); cause != nil {
		return stoppedBy{cause}
	}
	return nil
}

// QueueDepth is the number of records queued or being written, and so not
// yet durable, for a gauge. Callers waiting for room in a full queue are
// not counted.
func (l *Log) QueueDepth() int { return l.queue.len() + int(l.inflight.Load()) }

// Close writes every record already accepted, stops the writer, waits for
// it, checks that the path still names the file, and closes the file; later
// Records return messages.ErrStopped. An error wraps ErrLogFailed if the log
// failed, now or earlier. It returns the same result when called again. The
// caller still owns the key.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.queue.close()
		l.wg.Wait()
		if l.Err() == nil {
			if err := l.file.Sync(); err != nil {
				l.fail(fmt.Errorf("final fsync: %w", err))
			} else {
				l.checkPath()
			}
		}
		if err := errors.Join(l.Err(), l.file.Close()); err != nil {
			l.closeErr = fmt.Errorf("audit: close log %s: %w", l.path, err)
		}
	})
	return l.closeErr
}
