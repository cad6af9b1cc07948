package supervisor

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
)

func TestEachOperationLeavesOneRecord(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	count := func() int { return len(w.audit.Records()) }
	last := func() audit.Record { r := w.audit.Records(); return r[len(r)-1] }

	before := count()
	s := w.seal(t, 0, "counted", 100*KiB)
	assert.Equal(t, before+1, count())
	assert.Equal(t, audit.EventVramSealed, last().Event)

	require.NoError(t, w.Verify(context.Background(), s))
	assert.Equal(t, before+2, count())
	assert.Equal(t, audit.EventSealVerified, last().Event)

	_, err := w.Seal(context.Background(), messages.SealRequest{ID: "huge", Data: bytes.NewReader(nil), Size: 20 * MiB})
	require.ErrorIs(t, err, messages.ErrInsufficientVRAM)
	assert.Equal(t, before+3, count())
	assert.Equal(t, audit.EventVramAllocationFailed, last().Event)

	require.NoError(t, w.Free(context.Background(), s))
	assert.Equal(t, before+4, count())
	assert.Equal(t, audit.EventVramDeallocated, last().Event)
}

func TestSealIsNotAcknowledgedWithoutItsRecordAndTheWorkerFailStops(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	diskFull := errors.New("no space left on device")
	w.audit.FailWith(diskFull)
	w.logBroken = true
	_, err := w.Seal(context.Background(), messages.SealRequest{ID: "unrecorded", Data: bytes.NewReader(make([]byte, MiB)), Size: MiB})
	require.ErrorIs(t, err, diskFull)
	assert.Contains(t, err.Error(), "audit record not durable")

	_, err = w.Seal(context.Background(), messages.SealRequest{ID: "next", Data: bytes.NewReader(make([]byte, KiB)), Size: KiB})
	assert.ErrorIs(t, err, messages.ErrStopped, "the fail-stop began before the failed seal returned")
	w.waitStopped(t)
	assert.ErrorIs(t, w.Err(), audit.ErrLogFailed)
	assert.ErrorIs(t, w.Err(), diskFull)
	assert.ErrorContains(t, w.Err(), "audit log failed: ")
	assert.Zero(t, w.sims[0].Outstanding(), "the failed seal holds nothing")
	assert.Empty(t, w.events(audit.EventVramSealed))
}

func TestVerifyIsNotAcknowledgedWithoutItsRecord(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	s := w.seal(t, 0, "checked", 64*KiB)
	verified := len(w.events(audit.EventSealVerified))
	w.audit.FailWith(errors.New("no space left on device"))
	w.logBroken = true

	require.ErrorContains(t, w.Verify(context.Background(), s), "audit record not durable")
	w.waitStopped(t)
	assert.ErrorIs(t, w.Err(), audit.ErrLogFailed)
	assert.Len(t, w.events(audit.EventSealVerified), verified)
}

func TestAFailingLogStopsTheScrub(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, func(c *Config) { c.VerifyInterval = time.Millisecond })
	w.seal(t, 0, "scrubbed", 64*KiB)
	w.audit.FailWith(errors.New("no space left on device"))
	w.logBroken = true
	w.waitStopped(t)
	assert.ErrorIs(t, w.Err(), audit.ErrLogFailed)
}

// openDurableLog opens an audit log file for test-worker in a new directory.
func openDurableLog(t *testing.T) (*audit.Log, *audit.Key, string) {
	t.Helper()
	auditKey, err := audit.DeriveKey([]byte("durable-log-token-0123456789"), "test-worker")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	log, err := audit.Open(path, audit.LogConfig{Key: auditKey})
	require.NoError(t, err)
	return log, auditKey, path
}

func TestRuntimeFailStopsWhenItsLogFileIsRemoved(t *testing.T) {
	log, _, path := openDurableLog(t)
	w := newTestWorker(t, []int64{10 * MiB}, func(c *Config) { c.Audit = log })
	s := w.seal(t, 0, "kept", 64*KiB)
	require.NoError(t, os.Remove(path))
	w.logBroken = true

	assert.ErrorContains(t, w.Verify(context.Background(), s), "was removed")
	w.waitStopped(t)
	assert.ErrorIs(t, w.Err(), audit.ErrLogFailed)
	assert.ErrorIs(t, log.Close(), audit.ErrLogFailed)
}

func TestCriticalRecordPrecedesDone(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	s := w.seal(t, 0, "victim", 64*KiB)
	require.NoError(t, w.sims[0].FlipBit(w.sims[0].Allocations()[0].Handle, 0, 0))
	require.ErrorIs(t, w.Verify(context.Background(), s), messages.ErrSealVerificationFailed)
	w.waitStopped(t)
	records := w.audit.Records()
	critical := -1
	for i, r := range records {
		if r.Event == audit.EventSealVerificationFailed {
			critical = i
		}
	}
	require.GreaterOrEqual(t, critical, 0, "the critical record is durable once Done closes")
	assert.Equal(t, audit.SeverityCritical, records[critical].Severity)
	assert.Equal(t, audit.EventWorkerStopped, records[len(records)-1].Event)
}

func TestRuntimeOverADurableLog(t *testing.T) {
	log, auditKey, path := openDurableLog(t)

	w := newTestWorker(t, []int64{10 * MiB}, func(c *Config) { c.Audit = log })
	s := w.seal(t, 0, "durable", MiB)
	require.NoError(t, w.Verify(context.Background(), s))
	require.NoError(t, w.Stop(context.Background()))
	require.NoError(t, log.Close())

	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	report, err := audit.Verify(f, auditKey)
	require.NoError(t, err)
	assert.True(t, report.Intact())
	assert.Equal(t, 5, report.Records, "started, sealed, verified, deallocated, stopped")
}

func TestWorkerStartedNamesTheBackendWhenGiven(t *testing.T) {
	for backend, want := range map[string]any{"sim": "sim", "": nil} {
		w := newTestWorker(t, []int64{MiB}, func(c *Config) { c.Backend = backend })
		started := w.audit.Records()[0]
		require.Equal(t, audit.EventWorkerStarted, started.Event)
		assert.Equal(t, want, started.Fields["backend"], "backend %q", backend)
	}
}
