package audit

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/vramseal/vramseal/messages"
)

// SyncMode says when the log calls fsync.
type SyncMode int

// Sync modes. The zero value means GroupCommit.
const (
	// GroupCommit writes every record waiting when the writer is free in one
	// write and one fsync; each Record returns once its batch is on disk.
	GroupCommit SyncMode = iota + 1
	// SyncEach writes and fsyncs each record on its own: durable, and slow.
	// It is the baseline group commit is measured against.
	SyncEach
	// NoSync writes like GroupCommit but never calls fsync, so Record
	// returns before the record is durable. It is for benchmarks and for
	// building large test logs, never for a worker.
	NoSync
)

var syncModeNames = map[SyncMode]string{GroupCommit: "group-commit", SyncEach: "sync-each", NoSync: "no-sync"}

// String names the mode.
func (m SyncMode) String() string {
	if n, ok := syncModeNames[m]; ok {
		return n
	}
	return fmt.Sprintf("SyncMode(%d)", int(m))
}

// DefaultQueueSize is the queue length when LogConfig.QueueSize is 0. The
// queue is what group commit batches from while an fsync is in flight, so
// it is sized for a thousand concurrent callers.
const DefaultQueueSize = 1024

// LogConfig configures Open.
type LogConfig struct {
	// Key chains the log; required. The log copies what it needs, so the
	// caller may Zero the key once Open has returned.
	Key *Key
	// WorkerID, if set, must be the worker the key was derived for.
	WorkerID string
	// QueueSize bounds the records accepted but not yet written, and so the
	// largest batch; 0 means DefaultQueueSize. When it is full, Record waits.
	QueueSize int
	// Now stamps records; nil means time.Now.
	Now func() time.Time
	// Sync says when to fsync; 0 means GroupCommit.
	Sync SyncMode
	// Logger receives what happened on Open (a log continued, a torn tail
	// cut); nil discards it.
	Logger *slog.Logger
}

// withDefaults checks the configuration and fills in its defaults.
func (c LogConfig) withDefaults() (LogConfig, error) {
	if err := usableKey(c.Key); err != nil {
		return c, err
	}
	if c.WorkerID == "" {
		c.WorkerID = c.Key.WorkerID()
	}
	if c.WorkerID != c.Key.WorkerID() {
		return c, fmt.Errorf("%w: audit key was derived for worker %q, not %q", messages.ErrConfig, c.Key.WorkerID(), c.WorkerID)
	}
	if c.QueueSize < 0 {
		return c, fmt.Errorf("%w: audit queue size %d is negative", messages.ErrConfig, c.QueueSize)
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.Sync == 0 {
		c.Sync = GroupCommit
	}
	if _, ok := syncModeNames[c.Sync]; !ok {
		return c, fmt.Errorf("%w: unknown audit %v", messages.ErrConfig, c.Sync)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
