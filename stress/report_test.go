package stress

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
)

func TestSummarize(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i
	}
	tests := []struct {
		name string
		in   []time.Duration
		want Latency
	}{
		{"empty", nil, Latency{}},
		{"one", ms(7), Latency{Count: 1, P50: 7 * time.Millisecond, P95: 7 * time.Millisecond, P99: 7 * time.Millisecond, Max: 7 * time.Millisecond}},
		{"hundred, unsorted", ms(hundred...), Latency{Count: 100, P50: 50 * time.Millisecond, P95: 95 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, summarize(tt.in))
		})
	}
}

func TestSealErrorReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("seal: %w", messages.ErrAllocationFailed), "allocation_failed"},
		{fmt.Errorf("seal: %w", cuda.ErrCopyFailed), "copy_failed"},
		{&messages.InsufficientVRAMError{Needed: 2, Available: 1}, "insufficient_vram"},
		{fmt.Errorf("seal: %w", messages.ErrStopped), "stopped"},
		{fmt.Errorf("seal: %w", messages.ErrDeviceFault), "device_fault"},
		{context.Canceled, "cancelled"},
		{errors.New("disk on fire"), "other"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, sealErrorReason(tt.err))
		})
	}
}

func TestReportWriteText(t *testing.T) {
	r := Report{
		Devices: 4, Seals: 10, Concurrency: 2, Seed: 3, FaultRates: DefaultFaults(),
		Ops:        map[string]OpStats{OpSeal: {OK: 9, Failed: 1, Latency: Latency{Count: 9, P50: time.Millisecond}}},
		Faults:     map[string]FaultCount{FaultBitFlip: {Injected: 2, Detected: 2}},
		SealErrors: map[string]int{"copy_failed": 1}, Violations: 1,
		ViolationSamples: []string{"runtime 1: something broke"},
	}
	var b bytes.Buffer
	require.NoError(t, r.WriteText(&b))
	out := b.String()
	for _, want := range append(append([]string{"copy_failed=1", "violations: 1", "runtime 1: something broke", DefaultFaults().String()}, opKinds...), faultKinds...) {
		assert.Contains(t, out, want)
	}
	assert.Regexp(t, `bitflip\s+2\s+2`, out)
}
