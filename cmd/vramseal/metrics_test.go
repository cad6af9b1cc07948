package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
)

// fakeRuntime is a runtimeView with a fixed set of devices and shards.
type fakeRuntime struct {
	fakeCapacity
	shards []messages.ShardStatus
	err    error
}

func (f *fakeRuntime) Shards(context.Context) ([]messages.ShardStatus, error) { return f.shards, f.err }

func TestMetricsCountOperationsFromAuditRecords(t *testing.T) {
	m, err := newMetrics(func() int { return 0 })
	require.NoError(t, err)
	records := []audit.Record{
		{Event: audit.EventWorkerStarted},
		{Event: audit.EventVramSealed, Fields: map[string]any{"size": int64(100)}},
		{Event: audit.EventVramSealed, Fields: map[string]any{"size": int64(200)}},
		{Event: audit.EventVramAllocationFailed},
		{Event: audit.EventSealVerified, Fields: map[string]any{"size": int64(100), "source": "verify"}},
		{Event: audit.EventSealVerified, Fields: map[string]any{"size": int64(100), "source": "scrub"}},
		{Event: audit.EventSealVerified, Fields: map[string]any{"size": 200, "source": "scrub"}},
		{Event: audit.EventSealVerificationFailed},
	}
	for _, r := range records {
		m.observe(r)
	}
	assert.Equal(t, 2.0, testutil.ToFloat64(m.seals.WithLabelValues(resultSuccess)))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.seals.WithLabelValues(resultFailure)))
	assert.Equal(t, 3.0, testutil.ToFloat64(m.verifies.WithLabelValues(resultSuccess)))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.verifies.WithLabelValues(resultFailure)))
	assert.Equal(t, 300.0, testutil.ToFloat64(m.scrubbed), "only scrubbed bytes count")
}

func TestMetricsReadMemoryAndShardAgesFromTheRuntime(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rt := &fakeRuntime{
		fakeCapacity: fakeCapacity{
			{Device: 0, Total: 1000, Free: 600, Headroom: 100},
			{Device: 1, Total: 1000, Free: 50, Headroom: 100},
		},
		shards: []messages.ShardStatus{
			{ID: "verified", SealedAt: now.Add(-time.Hour), LastVerified: now.Add(-2 * time.Second)},
			{ID: "never", SealedAt: now.Add(-5 * time.Second)},
		},
	}
	m, err := newMetrics(func() int { return 7 })
	require.NoError(t, err)
	require.NoError(t, m.watch(rt, func() time.Time { return now }))

	want := `
# HELP vram_audit_queue_depth Audit records accepted but not yet durable.
# TYPE vram_audit_queue_depth gauge
vram_audit_queue_depth 7
# HELP vram_available_bytes Device memory this worker may still seal into: free memory less headroom.
# TYPE vram_available_bytes gauge
vram_available_bytes{device="0"} 500
vram_available_bytes{device="1"} 0
# HELP vram_shard_seconds_since_verified Seconds since every chunk of the shard was last re-hashed and matched; since it was sealed if never.
# TYPE vram_shard_seconds_since_verified gauge
vram_shard_seconds_since_verified{shard="never"} 5
vram_shard_seconds_since_verified{shard="verified"} 2
# HELP vram_total_bytes Device memory.
# TYPE vram_total_bytes gauge
vram_total_bytes{device="0"} 1000
vram_total_bytes{device="1"} 1000
# HELP vram_used_bytes Device memory in use, by this worker and anything else.
# TYPE vram_used_bytes gauge
vram_used_bytes{device="0"} 400
vram_used_bytes{device="1"} 950
`
	assert.NoError(t, testutil.GatherAndCompare(m.registry, strings.NewReader(want),
		"vram_audit_queue_depth", "vram_available_bytes", "vram_shard_seconds_since_verified", "vram_total_bytes", "vram_used_bytes"))
}

func TestMetricsReportNoRuntimeSeriesOnceItHasStopped(t *testing.T) {
	rt := &fakeRuntime{err: messages.ErrStopped}
	m, err := newMetrics(func() int { return 0 })
	require.NoError(t, err)
	require.NoError(t, m.watch(stoppedRuntime{rt}, time.Now))
	n, err := testutil.GatherAndCount(m.registry, "vram_total_bytes", "vram_shard_seconds_since_verified")
	require.NoError(t, err)
	assert.Zero(t, n)
}

// stoppedRuntime answers every call with ErrStopped, as a stopped runtime does.
type stoppedRuntime struct{ *fakeRuntime }

func (stoppedRuntime) Devices() int { return 1 }

func (stoppedRuntime) Capacity(context.Context, int) (messages.Capacity, error) {
	return messages.Capacity{}, messages.ErrStopped
}

func TestObservedSinkShowsDurableAndCriticalRecords(t *testing.T) {
	mem := audit.NewMemory()
	var seen []string
	sink := &observedSink{next: mem, observers: []func(audit.Record){func(r audit.Record) { seen = append(seen, r.Event) }}}
	ctx := context.Background()

	require.NoError(t, sink.Record(ctx, audit.Record{Event: audit.EventVramSealed, Severity: audit.SeverityInfo}))
	broken := errors.New("disk full")
	mem.FailWith(broken)
	assert.ErrorIs(t, sink.Record(ctx, audit.Record{Event: audit.EventSealVerified, Severity: audit.SeverityInfo}), broken)
	assert.ErrorIs(t, sink.Record(ctx, audit.Record{Event: audit.EventSealVerificationFailed, Severity: audit.SeverityCritical}), broken)

	assert.Equal(t, []string{audit.EventVramSealed, audit.EventSealVerificationFailed}, seen,
		"a record that is not durable is not counted, unless it is critical")
	assert.Len(t, mem.Records(), 1)
}

func TestFieldInt64ReadsTheRuntimesIntegerForms(t *testing.T) {
	fields := map[string]any{"int64": int64(5), "int": 6, "string": "8"}
	for key, want := range map[string]int64{"int64": 5, "int": 6} {
		got, ok := fieldInt64(fields, key)
		assert.True(t, ok, key)
		assert.Equal(t, want, got, key)
	}
	_, ok := fieldInt64(fields, "string")
	assert.False(t, ok)
	_, ok = fieldInt64(fields, "missing")
	assert.False(t, ok)
}
