package stress

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
)

// smallConfig is a harness run that takes a second or two under the race
// detector: two devices, small shards and a few multi-chunk ones.
func smallConfig(faults Faults) Config {
	return Config{
		Devices: 2, DeviceCapacity: 64 * mib, Seals: 400, Concurrency: 24, Faults: faults, Seed: 7,
		Sizes:            []SizeClass{{Weight: 0.9, Min: 4 * kib, Max: 64 * kib}, {Weight: 0.1, Min: 130 * kib, Max: 200 * kib}},
		VerifyInterval:   5 * time.Millisecond,
		ScrubRate:        16 * mib,
		DetectionTimeout: 10 * time.Second,
	}
}

// everyFault injects every kind often enough that a small run sees each.
var everyFault = Faults{Alloc: 0.05, Copy: 0.05, Read: 0.05, BitFlip: 0.04, Lost: 0.02}

func TestRunHoldsInvariantsUnderEveryFault(t *testing.T) {
	cfg := smallConfig(everyFault)
	if !testing.Short() {
		cfg.Seals, cfg.Concurrency = 2000, 100
	}
	r, err := Run(context.Background(), cfg)
	require.NoError(t, err)

	assert.Zero(t, r.Violations, "%v", r.ViolationSamples)
	for _, kind := range faultKinds {
		f := r.Faults[kind]
		assert.Positive(t, f.Injected, kind)
		assert.Equal(t, f.Injected, f.Detected, kind)
	}
	assert.Equal(t, r.Faults[FaultBitFlip].Injected, r.DetectionLatency.Count, "a detection latency per flip")
	assert.Equal(t, r.Runtimes, r.Restarts+1, "every runtime after the first is a restart")
	fatal := r.Faults[FaultBitFlip].Injected + r.Faults[FaultLost].Injected
	assert.Contains(t, []int{r.Restarts, r.Restarts + 1}, fatal, "a restart after each fail-stop but perhaps the last")
	assert.Equal(t, r.Faults[FaultAlloc].Injected, r.SealErrors["allocation_failed"])
	assert.Equal(t, r.Faults[FaultCopy].Injected, r.SealErrors["copy_failed"])
	sealAttempts := r.Ops[OpSeal].OK + r.Ops[OpSeal].Failed
	assert.Equal(t, cfg.Seals, sealAttempts, "the whole budget is spent")
	for _, kind := range opKinds {
		assert.Positive(t, r.Ops[kind].OK, kind)
		assert.Positive(t, r.Ops[kind].PerSecond, kind)
	}
	assert.Positive(t, r.PeakHeapBytes)
}

// TestRunReleasesBeforeItsFirstFatalFault loses a device at every seal once
// fatal faults may start: were they not to wait for the run's first release,
// every runtime would be lost at its first seal and no caller would ever
// hold enough shards to release one.
func TestRunReleasesBeforeItsFirstFatalFault(t *testing.T) {
	cfg := smallConfig(Faults{Lost: 1})
	cfg.Seals, cfg.Concurrency = 60, 4
	r, err := Run(context.Background(), cfg)
	require.NoError(t, err)

	assert.Zero(t, r.Violations, "%v", r.ViolationSamples)
	assert.Positive(t, r.Ops[OpRelease].OK)
	assert.Positive(t, r.Restarts, "once a shard was released, every seal lost its device")
	assert.Positive(t, r.Faults[FaultLost].Injected)
	assert.Equal(t, r.Faults[FaultLost].Injected, r.Faults[FaultLost].Detected)
}

func TestRunWithoutFaultsStopsOnce(t *testing.T) {
	cfg := smallConfig(Faults{})
	cfg.Seals = 200
	r, err := Run(context.Background(), cfg)
	require.NoError(t, err)

	assert.Zero(t, r.Violations, "%v", r.ViolationSamples)
	assert.Equal(t, 1, r.Runtimes)
	assert.Zero(t, r.Restarts)
	assert.Equal(t, cfg.Seals, r.Ops[OpSeal].OK)
	for _, kind := range faultKinds {
		assert.Zero(t, r.Faults[kind], kind)
	}
}

// TestCheckerCatchesPlantedViolations breaks one invariant at a time through
// the test hooks and requires the checker to report it.
func TestCheckerCatchesPlantedViolations(t *testing.T) {
	dropFirst := func(event string) func(audit.Record) bool {
		var dropped atomic.Bool
		return func(r audit.Record) bool { return r.Event == event && !dropped.Swap(true) }
	}
	dropFirstVerify := func() func(audit.Record) bool {
		var dropped atomic.Bool
		return func(r audit.Record) bool {
			return r.Event == audit.EventSealVerified && r.Fields["source"] == "verify" && !dropped.Swap(true)
		}
	}
	var skipped atomic.Bool
	tests := []struct {
		name   string
		faults Faults
		hooks  testHooks
		want   string
	}{
		{"dropped VramSealed record", Faults{}, testHooks{dropRecord: dropFirst(audit.EventVramSealed)}, "has no VramSealed record"},
		{"dropped VramDeallocated record", Faults{}, testHooks{dropRecord: dropFirst(audit.EventVramDeallocated)}, "has no VramDeallocated record"},
		{"dropped SealVerified record", Faults{}, testHooks{dropRecord: dropFirstVerify()}, "SealVerified records"},
		{"dropped WorkerStopped record", Faults{}, testHooks{dropRecord: dropFirst(audit.EventWorkerStopped)}, "WorkerStopped"},
		{"skipped free", Faults{}, testHooks{skipFree: func(device int) bool { return device == 0 && !skipped.Swap(true) }}, "device 0 accounting"},
		{"skipped free at stop", Faults{}, testHooks{skipFreeAtStop: true}, "left 1 allocations for Close to free"},
		{"flip the checker was not told of", Faults{}, testHooks{silentFlip: true}, "false alarm"},
		{"flip undone before detection", Faults{BitFlip: 0.1}, testHooks{undoneFlip: true}, "not detected within"},
		{"leaked goroutine", Faults{}, testHooks{leakGoroutine: true, goroutineDeadline: 200 * time.Millisecond}, "goroutine leak"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := smallConfig(tt.faults)
			cfg.Seals = 150
			cfg.DetectionTimeout = 300 * time.Millisecond
			cfg.hooks = tt.hooks
			r, err := Run(context.Background(), cfg)
			require.NoError(t, err)

			assert.Positive(t, r.Violations)
			assert.True(t, containsSubstring(r.ViolationSamples, tt.want), "want a violation mentioning %q, got %q", tt.want, r.ViolationSamples)
		})
	}
}

func TestRunReportJSON(t *testing.T) {
	cfg := smallConfig(Faults{Alloc: 0.05, Read: 0.05})
	cfg.Seals = 100
	r, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	b, err := json.Marshal(r)
	require.NoError(t, err)

	var got struct {
		Violations *int                       `json:"violations"`
		Faults     map[string]map[string]*int `json:"faults"`
		Ops        map[string]struct {
			OK int `json:"ok"`
		} `json:"ops"`
	}
	require.NoError(t, json.Unmarshal(b, &got))
	require.NotNil(t, got.Violations)
	assert.Equal(t, r.Violations, *got.Violations)
	for _, kind := range faultKinds {
		require.Contains(t, got.Faults, kind)
		require.NotNil(t, got.Faults[kind]["injected"], kind)
		require.NotNil(t, got.Faults[kind]["detected"], kind)
		assert.Equal(t, r.Faults[kind].Injected, *got.Faults[kind]["injected"], kind)
	}
	assert.Equal(t, r.Ops[OpSeal].OK, got.Ops[OpSeal].OK)
}

func TestRunRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"negative seals", Config{Seals: -1}},
		{"rate above one", Config{Faults: Faults{Read: 2}}},
		{"odd chunk size", Config{ChunkSize: 100 * kib}},
		{"shard smaller than its header", Config{Sizes: []SizeClass{{Weight: 1, Min: 8, Max: 16}}}},
		{"shard larger than a device", Config{DeviceCapacity: mib, Sizes: []SizeClass{{Weight: 1, Min: kib, Max: 2 * mib}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.cfg)
			assert.ErrorIs(t, err, messages.ErrConfig)
		})
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg := smallConfig(Faults{})
	r, err := Run(ctx, cfg)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Less(t, r.Ops[OpSeal].OK, cfg.Seals)
}

func containsSubstring(samples []string, want string) bool {
	for _, s := range samples {
		if strings.Contains(s, want) {
			return true
		}
	}
	return false
}
