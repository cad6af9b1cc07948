package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/cuda/driver"
	"github.com/vramseal/vramseal/internal/modeltest"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/supervisor"
)

// fakeRuntime is a runtimeView with a fixed set of devices and shards.
type fakeRuntime struct {
	modeltest.Capacities
	shards []messages.ShardStatus
	err    error
}

func (f *fakeRuntime) Shards(context.Context) ([]messages.ShardStatus, error) { return f.shards, f.err }

func TestMetricsCountOperationsFromAuditRecords(t *testing.T) {
	m, err := newMetrics(func() int { return 0 }, nil)
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
		Capacities: modeltest.Capacities{
			{Device: 0, Total: 1000, Free: 600, Headroom: 100},
			{Device: 1, Total: 1000, Free: 50, Headroom: 100},
		},
		shards: []messages.ShardStatus{
			{ID: "verified", Device: 1, SealedAt: now.Add(-time.Hour), LastVerified: now.Add(-2 * time.Second)},
			{ID: "never", SealedAt: now.Add(-5 * time.Second)},
		},
	}
	m, err := newMetrics(func() int { return 7 }, []string{"GPU-a", "GPU-b"})
	require.NoError(t, err)
	require.NoError(t, m.watch(rt, func() time.Time { return now }))

	want := `
# HELP vram_audit_queue_depth Audit records accepted but not yet durable.
# TYPE vram_audit_queue_depth gauge
vram_audit_queue_depth 7
# HELP vram_available_bytes Device memory this worker may still seal into: free memory less headroom.
# TYPE vram_available_bytes gauge
vram_available_bytes{device="0",uuid="GPU-a"} 500
vram_available_bytes{device="1",uuid="GPU-b"} 0
# HELP vram_shard_seconds_since_verified Seconds since every chunk of the shard was last re-hashed and matched; since it was sealed if never.
# TYPE vram_shard_seconds_since_verified gauge
vram_shard_seconds_since_verified{device="0",shard="never",uuid="GPU-a"} 5
vram_shard_seconds_since_verified{device="1",shard="verified",uuid="GPU-b"} 2
# HELP vram_total_bytes Device memory.
# TYPE vram_total_bytes gauge
vram_total_bytes{device="0",uuid="GPU-a"} 1000
vram_total_bytes{device="1",uuid="GPU-b"} 1000
# HELP vram_used_bytes Device memory in use, by this worker and anything else.
# TYPE vram_used_bytes gauge
vram_used_bytes{device="0",uuid="GPU-a"} 400
vram_used_bytes{device="1",uuid="GPU-b"} 950
`
	assert.NoError(t, testutil.GatherAndCompare(m.registry, strings.NewReader(want),
		"vram_audit_queue_depth", "vram_available_bytes", "vram_shard_seconds_since_verified", "vram_total_bytes", "vram_used_bytes"))
}

func TestMetricsDescribeTheBuildTheWorkerAndEachScrubPass(t *testing.T) {
	m, err := newMetrics(func() int { return 0 }, []string{"GPU-a", "GPU-b"})
	require.NoError(t, err)
	ready, failStopped := true, false
	require.NoError(t, m.watchWorker(func() bool { return ready }, func() bool { return failStopped }))
	end := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m.scrubPass(supervisor.ScrubPass{Device: 1, Shards: 2, Bytes: 300, Elapsed: 1500 * time.Millisecond, Time: end})
	m.scrubPass(supervisor.ScrubPass{Device: 0, Shards: 0, Mismatches: 1, Elapsed: time.Second, Time: end.Add(time.Hour)})

	want := fmt.Sprintf(`
# HELP vram_failstopped 1 once the worker has fail-stopped on an integrity, device or policy failure.
# TYPE vram_failstopped gauge
vram_failstopped 0
# HELP vram_ready 1 while /readyz answers 200: every shard sealed and freshly verified, nothing failed.
# TYPE vram_ready gauge
vram_ready 1
# HELP vram_scrub_last_pass_timestamp_seconds Unix time at which the background scrub last finished a full pass over the device's shards.
# TYPE vram_scrub_last_pass_timestamp_seconds gauge
vram_scrub_last_pass_timestamp_seconds{device="1",uuid="GPU-b"} %d
# HELP vram_scrub_pass_duration_seconds How long the device's last full background scrub pass took.
# TYPE vram_scrub_pass_duration_seconds gauge
vram_scrub_pass_duration_seconds{device="1",uuid="GPU-b"} 1.5
`, end.Unix())
	assert.NoError(t, testutil.GatherAndCompare(m.registry, strings.NewReader(want),
		"vram_failstopped", "vram_ready", "vram_scrub_last_pass_timestamp_seconds", "vram_scrub_pass_duration_seconds"),
		"a pass cut short by a mismatch is not a full pass")
	ready, failStopped = false, true
	assert.NoError(t, testutil.GatherAndCompare(m.registry, strings.NewReader(`
# HELP vram_failstopped 1 once the worker has fail-stopped on an integrity, device or policy failure.
# TYPE vram_failstopped gauge
vram_failstopped 1
# HELP vram_ready 1 while /readyz answers 200: every shard sealed and freshly verified, nothing failed.
# TYPE vram_ready gauge
vram_ready 0
`), "vram_failstopped", "vram_ready"))

	families, err := m.registry.Gather()
	require.NoError(t, err)
	var info *dto.MetricFamily
	for _, f := range families {
		if f.GetName() == "vramseal_build_info" {
			info = f
		}
	}
	require.NotNil(t, info, "vramseal_build_info")
	require.Len(t, info.GetMetric(), 1)
	assert.Equal(t, 1.0, info.GetMetric()[0].GetGauge().GetValue())
	labels := map[string]string{}
	for _, l := range info.GetMetric()[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	assert.Equal(t, runtime.Version(), labels["goversion"])
	assert.NotEmpty(t, labels["version"])
	assert.NotEmpty(t, labels["commit"])
}

func TestMetricsReportNoRuntimeSeriesOnceItHasStopped(t *testing.T) {
	rt := &fakeRuntime{err: messages.ErrStopped}
	m, err := newMetrics(func() int { return 0 }, nil)
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

// countingGPU is a device that counts its hashes, as a driver.Device does.
type countingGPU struct {
	cuda.Device
	stats driver.HashStats
}

func (g *countingGPU) HashStats() driver.HashStats { return g.stats }

func TestMetricsReadEachGPUsHashCounters(t *testing.T) {
	m, err := newMetrics(func() int { return 0 }, []string{"GPU-a", "SIM-b"})
	require.NoError(t, err)
	sim, err := cuda.NewSim(cuda.SimConfig{Capacity: 1 << 20})
	require.NoError(t, err)
	defer sim.Close()
	gpu := &countingGPU{Device: sim, stats: driver.HashStats{Launches: 3, Chunks: 3000, HostFallbacks: 1}}
	require.NoError(t, m.watchHashes([]cuda.Device{gpu, sim}))

	want := `
# HELP vram_device_hash_chunks_total Chunks hashed on the device by those launches.
# TYPE vram_device_hash_chunks_total counter
vram_device_hash_chunks_total{device="0",uuid="GPU-a"} 3000
# HELP vram_device_hash_host_fallbacks_total Hashes copied out to the host although the kernel loaded, because device memory was too full for a digest buffer.
# TYPE vram_device_hash_host_fallbacks_total counter
vram_device_hash_host_fallbacks_total{device="0",uuid="GPU-a"} 1
# HELP vram_device_hash_launches_total SHA-256 kernel launches on the device.
# TYPE vram_device_hash_launches_total counter
vram_device_hash_launches_total{device="0",uuid="GPU-a"} 3
`
	assert.NoError(t, testutil.GatherAndCompare(m.registry, strings.NewReader(want),
		"vram_device_hash_launches_total", "vram_device_hash_chunks_total", "vram_device_hash_host_fallbacks_total"),
		"only the device that counts its hashes has series")
}

func TestMetricsAddNoHashSeriesOnSimulatedGPUs(t *testing.T) {
	m, err := newMetrics(func() int { return 0 }, nil)
	require.NoError(t, err)
	sim, err := cuda.NewSim(cuda.SimConfig{Capacity: 1 << 20})
	require.NoError(t, err)
	defer sim.Close()
	require.NoError(t, m.watchHashes([]cuda.Device{sim}))
	n, err := testutil.GatherAndCount(m.registry, "vram_device_hash_launches_total")
	require.NoError(t, err)
	assert.Zero(t, n)
}
