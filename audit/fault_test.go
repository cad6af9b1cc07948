package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
)

// faultyFile is a log file whose writes and fsyncs can fail or stall.
type faultyFile struct {
	*os.File
	entered chan struct{} // signalled (without blocking) when Sync starts

	mu       sync.Mutex
	writeErr error
	partial  bool  // write half the buffer before failing
	syncErr  error // fail every Sync after okSyncs more succeed
	okSyncs  int
	gate     chan struct{} // when set, Sync waits until it is closed
}

func newFaultyFile() *faultyFile { return &faultyFile{entered: make(chan struct{}, 1)} }

func (f *faultyFile) Write(b []byte) (int, error) {
	f.mu.Lock()
	err, partial := f.writeErr, f.partial
	f.mu.Unlock()
	if err == nil {
		return f.File.Write(b)
	}
	if !partial {
		return 0, err
	}
	n, werr := f.File.Write(b[:len(b)/2])
	return n, errors.Join(err, werr)
}

func (f *faultyFile) Sync() error {
	f.mu.Lock()
	err, gate := f.syncErr, f.gate
	if err != nil && f.okSyncs > 0 {
		err = nil
		f.okSyncs--
	}
	f.mu.Unlock()
	select {
	case f.entered <- struct{}{}:
	default:
	}
	if gate != nil {
		<-gate
	}
	if err != nil {
		return err
	}
	return f.File.Sync()
}

// set changes the faults under the lock.
func (f *faultyFile) set(change func(f *faultyFile)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// openFaulty opens a log at path whose writer goes through ff.
func openFaulty(t *testing.T, path string, cfg LogConfig, ff *faultyFile) *Log {
	t.Helper()
	l, err := open(path, cfg, func(f *os.File) logFile {
		ff.File = f
		return ff
	}, defaultPacing)
	require.NoError(t, err)
	return l
}

// recordAsync starts Record in a goroutine the test waits for through the
// returned channel.
func recordAsync(l *Log, r Record) <-chan error {
	done := make(chan error, 1)
	go func() { done <- l.Record(context.Background(), r) }()
	return done
}

func TestWriteFailureFailsTheLog(t *testing.T) {
	key := testKey(t, "w1")
	tests := []struct {
		name  string
		fault func(f *faultyFile)
		cause error
	}{
		{"disk full", func(f *faultyFile) { f.writeErr = syscall.ENOSPC }, syscall.ENOSPC},
		{"torn write", func(f *faultyFile) { f.writeErr, f.partial = syscall.EIO, true }, syscall.EIO},
		{"fsync error", func(f *faultyFile) { f.syncErr = syscall.EIO }, syscall.EIO},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			ff := newFaultyFile()
			l := openFaulty(t, path, LogConfig{Key: key}, ff)
			ctx := context.Background()
			require.NoError(t, l.Record(ctx, record(1)))

			ff.set(tt.fault)
			err := l.Record(ctx, record(2))
			assert.ErrorIs(t, err, tt.cause)
			assert.ErrorIs(t, err, ErrLogFailed)
			assert.NotErrorIs(t, err, messages.ErrStopped)
			select {
			case <-l.Failed():
			default:
				assert.Fail(t, "Failed is not closed")
			}
			assert.ErrorIs(t, l.Err(), tt.cause)
			ff.set(func(f *faultyFile) { f.writeErr, f.partial, f.syncErr = nil, false, nil })

			err = l.Record(ctx, record(3))
			assert.ErrorIs(t, err, messages.ErrStopped, "a failed log stays failed")
			assert.ErrorIs(t, err, tt.cause)
			assert.Equal(t, uint64(1), l.Stats().Records)
			assert.ErrorIs(t, l.Close(), ErrLogFailed)
			assert.Equal(t, []string{EventVramSealed}, eventsOf(readLog(t, path)), "the failed batch is cut: the log ends with its last durable record, no torn line")

			reopened, err := Open(path, LogConfig{Key: key})
			require.NoError(t, err)
			require.NoError(t, reopened.Close())
			got := readLog(t, path)
			assert.Equal(t, []string{EventVramSealed}, eventsOf(got), "nothing torn to cut on reopening")
			assert.Equal(t, "shard-1", got[0].Fields["shard"], "the acknowledged record survives")
			verifyFile(t, path, key)
		})
	}
}

func TestWriteFailureFailsTheWholeBatch(t *testing.T) {
	for _, mode := range []SyncMode{GroupCommit, SyncEach} {
		t.Run(mode.String(), func(t *testing.T) {
			ff := newFaultyFile()
			ff.gate = make(chan struct{})
			l := openFaulty(t, filepath.Join(t.TempDir(), "audit.log"), LogConfig{Key: testKey(t, "w1"), Sync: mode, QueueSize: 2}, ff)
			// Every wait is bounded, so that a regression fails this test
			// by name rather than timing out the package.
			const patience = 30 * time.Second
			result := func(done <-chan error, what string) error {
				t.Helper()
				select {
				case err := <-done:
					return err
				case <-time.After(patience):
					t.Fatalf("%s: %s did not return within %v", t.Name(), what, patience)
					return nil
				}
			}

			first := recordAsync(l, record(1))
			select {
			case <-ff.entered: // the writer is inside the first fsync
			case <-time.After(patience):
				t.Fatalf("%s: the writer did not reach the first fsync within %v", t.Name(), patience)
			}
			batch := []<-chan error{recordAsync(l, record(2)), recordAsync(l, record(3))}
			require.Eventually(t, func() bool { return l.QueueDepth() == 3 }, 10*time.Second, time.Millisecond)
			behind := recordAsync(l, record(4)) // waits for room, so it comes in a later batch
			ff.set(func(f *faultyFile) { f.writeErr = syscall.ENOSPC })
			close(ff.gate)

			assert.NoError(t, result(first, "the first record"))
			for _, done := range batch {
				err := result(done, "a record of the failed batch")
				assert.ErrorIs(t, err, syscall.ENOSPC)
				assert.NotErrorIs(t, err, messages.ErrStopped)
			}
			err := result(behind, "the record queued behind the failed batch")
			assert.ErrorIs(t, err, syscall.ENOSPC)
			assert.ErrorIs(t, err, messages.ErrStopped, "records queued behind a failed batch fail too")
			assert.Equal(t, 0, l.QueueDepth())
			assert.Equal(t, uint64(1), l.Stats().Records)
			assert.ErrorIs(t, l.Close(), ErrLogFailed)
		})
	}
}

func TestSyncEachFailsOnlyTheRecordsFromTheFailedOne(t *testing.T) {
	key := testKey(t, "w1")
	path := filepath.Join(t.TempDir(), "audit.log")
	ff := newFaultyFile()
	ff.gate = make(chan struct{})
	l := openFaulty(t, path, LogConfig{Key: key, Sync: SyncEach}, ff)

	first := recordAsync(l, record(1))
	<-ff.entered // the writer is inside record 1's fsync
	var batch []<-chan error
	for i := range 3 {
		batch = append(batch, recordAsync(l, record(i+2)))
		require.Eventually(t, func() bool { return l.QueueDepth() == i+2 }, 10*time.Second, time.Millisecond,
			"records 2 to 4 queue in order, to be written as one batch")
	}
	ff.set(func(f *faultyFile) { f.syncErr, f.okSyncs = syscall.EIO, 1 }) // record 2's fsync succeeds, record 3's fails
	close(ff.gate)

	assert.NoError(t, <-first)
	assert.NoError(t, <-batch[0], "record 2 was durable before record 3 failed")
	for _, done := range batch[1:] {
		err := <-done
		assert.ErrorIs(t, err, syscall.EIO)
		assert.NotErrorIs(t, err, messages.ErrStopped)
	}
	assert.Equal(t, uint64(2), l.Stats().Records)
	assert.ErrorIs(t, l.Close(), ErrLogFailed)
	assert.Len(t, readLog(t, path), 2, "the log ends with the last durable record")
}

// eventsOf lists the events of lines.
func eventsOf(lines []writtenLine) []string {
	var events []string
	for _, line := range lines {
		events = append(events, line.Event)
	}
	return events
}

func TestFullQueueMakesCallersWait(t *testing.T) {
	key := testKey(t, "w1")
	path := filepath.Join(t.TempDir(), "audit.log")
	ff := newFaultyFile()
	ff.gate = make(chan struct{})
	l := openFaulty(t, path, LogConfig{Key: key, QueueSize: 2}, ff)

	waiting := []<-chan error{recordAsync(l, record(1))}
	<-ff.entered // the writer holds record 1 inside its fsync
	for i := range 4 {
		waiting = append(waiting, recordAsync(l, record(i+2)))
	}
	require.Eventually(t, func() bool { return l.QueueDepth() == 3 }, 10*time.Second, time.Millisecond,
		"one record in flight and two queued; the other two callers wait for room")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, l.Record(ctx, record(99)), context.DeadlineExceeded, "a caller waits for room only as long as its context")
	for i, done := range waiting {
		assert.Empty(t, done, "record %d answered before it was durable", i+1)
	}

	close(ff.gate)
	for _, done := range waiting {
		assert.NoError(t, <-done)
	}
	require.NoError(t, l.Close())

	got := readLog(t, path)
	assert.Len(t, got, 5, "every caller that waited was written; none dropped")
	for _, line := range got {
		assert.NotEqual(t, "shard-99", line.Fields["shard"])
	}
	verifyFile(t, path, key)
}

func TestCloseWritesWhatIsQueued(t *testing.T) {
	key := testKey(t, "w1")
	path := filepath.Join(t.TempDir(), "audit.log")
	ff := newFaultyFile()
	ff.gate = make(chan struct{})
	l := openFaulty(t, path, LogConfig{Key: key}, ff)

	waiting := []<-chan error{recordAsync(l, record(1))}
	<-ff.entered
	waiting = append(waiting, recordAsync(l, record(2)), recordAsync(l, record(3)))
	require.Eventually(t, func() bool { return l.QueueDepth() == 3 }, 10*time.Second, time.Millisecond)

	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	require.Eventually(t, func() bool {
		l.queue.mu.Lock()
		defer l.queue.mu.Unlock()
		return l.queue.closed
	}, 10*time.Second, time.Millisecond)
	assert.ErrorIs(t, l.Record(context.Background(), record(4)), messages.ErrStopped)

	close(ff.gate)
	for _, done := range waiting {
		assert.NoError(t, <-done)
	}
	assert.NoError(t, <-closed)
	assert.Len(t, readLog(t, path), 3)
	verifyFile(t, path, key)
}

func TestRecordStopsWaitingWithItsContext(t *testing.T) {
	key := testKey(t, "w1")
	path := filepath.Join(t.TempDir(), "audit.log")
	ff := newFaultyFile()
	ff.gate = make(chan struct{})
	l := openFaulty(t, path, LogConfig{Key: key}, ff)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Record(ctx, record(1)) }()
	<-ff.entered // record 1 is being written
	cancel()
	err := <-done
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorContains(t, err, "not yet durable")

	close(ff.gate)
	require.NoError(t, l.Close())
	got := readLog(t, path)
	require.Len(t, got, 1, "a record handed to the writer is written even if its caller stopped waiting")
	assert.Equal(t, "shard-1", got[0].Fields["shard"])
}

func TestLogFailsWhenItsFileIsRemovedOrReplaced(t *testing.T) {
	key := testKey(t, "w1")
	tests := []struct {
		name   string
		change func(t *testing.T, path string)
		says   string
	}{
		{"removed", func(t *testing.T, path string) { require.NoError(t, os.Remove(path)) }, "was removed"},
		{"renamed away", func(t *testing.T, path string) { require.NoError(t, os.Rename(path, path+".old")) }, "was removed"},
		{"replaced", func(t *testing.T, path string) {
			other := path + ".new"
			require.NoError(t, os.WriteFile(other, nil, 0o600))
			require.NoError(t, os.Rename(other, path))
		}, "was replaced"},
	}
	// changed opens a log, writes records into it, and changes its file.
	changed := func(t *testing.T, records int, change func(*testing.T, string)) *Log {
		path := filepath.Join(t.TempDir(), "audit.log")
		l, err := Open(path, LogConfig{Key: key})
		require.NoError(t, err)
		for i := range records {
			require.NoError(t, l.Record(context.Background(), record(i+1)))
		}
		change(t, path)
		return l
	}
	for _, tt := range tests {
		t.Run("at the next record, "+tt.name, func(t *testing.T) {
			l := changed(t, 1, tt.change)
			err := l.Record(context.Background(), record(2))
			assert.ErrorIs(t, err, ErrLogFailed)
			assert.ErrorContains(t, err, tt.says)
			assert.ErrorIs(t, l.Close(), ErrLogFailed)
		})
		t.Run("while idle, "+tt.name, func(t *testing.T) {
			l := changed(t, 0, tt.change)
			select {
			case <-l.Failed():
			case <-time.After(10 * pathCheckInterval): // generous: it checks every interval
				assert.Fail(t, "an idle log did not notice")
			}
			assert.ErrorContains(t, l.Err(), tt.says)
			assert.ErrorIs(t, l.Record(context.Background(), record(2)), messages.ErrStopped)
			assert.ErrorIs(t, l.Close(), ErrLogFailed)
		})
		t.Run("at close, "+tt.name, func(t *testing.T) {
			err := changed(t, 1, tt.change).Close()
			assert.ErrorIs(t, err, ErrLogFailed)
			assert.ErrorContains(t, err, tt.says)
		})
	}
}

func TestAFailedFinalFsyncFailsTheLog(t *testing.T) {
	ff := newFaultyFile()
	l := openFaulty(t, filepath.Join(t.TempDir(), "audit.log"), LogConfig{Key: testKey(t, "w1")}, ff)
	require.NoError(t, l.Record(context.Background(), record(1)))

	ff.set(func(f *faultyFile) { f.syncErr = syscall.EIO })
	err := l.Close()
	assert.ErrorIs(t, err, ErrLogFailed, "a worker whose last records may not be durable exits as a failed log")
	assert.ErrorIs(t, err, syscall.EIO)
	assert.ErrorIs(t, l.Err(), ErrLogFailed)
}
