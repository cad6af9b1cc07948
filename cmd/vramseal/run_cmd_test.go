package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestFreshnessWindowIsThreeScrubCycles(t *testing.T) {
	tests := []struct {
		name        string
		interval    time.Duration
		rate        int64
		deviceBytes int64
		want        time.Duration
	}{
		{"no scrub", 0, 0, 1 << 30, 0},
		{"unlimited rate", 2 * time.Second, 0, 1 << 30, 6 * time.Second},
		{"rate-limited pass", 2 * time.Second, 1 << 30, 2 << 30, 12 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := runOptions{verifyInterval: tt.interval, scrubRate: rateFlag{bytesPerSecond: tt.rate}}
			assert.Equal(t, tt.want, o.freshnessWindow(tt.deviceBytes))
		})
	}
}
