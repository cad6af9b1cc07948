package main

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOutOfBoundsFlagsExit2WithOneLineThatSaysWhy(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	tests := []struct {
		flags []string
		want  string
	}{
		{[]string{"--verify-interval", "1ns"}, "--verify-interval 1ns is below 100ms: every pass writes an audit record per shard"},
		{[]string{"--verify-interval", "99ms"}, "is below 100ms"},
		{[]string{"--sim-devices", "200000"}, "--sim-devices 200000 is more than 64"},
		{[]string{"--sim-vram", "1KiB"}, "--sim-vram 1KiB is less than 1MiB"},
		{[]string{"--sim-vram", "2TiB"}, "--sim-vram 2TiB is more than 1TiB"},
		{[]string{"--scrub-rate", "1KiB/s"}, "--scrub-rate 1KiB/s is below 1MiB/s"},
		{[]string{"--scrub-rate", "1PiB/s"}, "faster than any memory reads; say --scrub-rate unlimited"},
		{[]string{"--headroom", "2TiB"}, "--headroom 2TiB is more than 1TiB"},
		{[]string{"--contention-interval", "1ms"}, "--contention-interval 1ms is below 10ms"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.flags, " "), func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"run", "--backend", "sim", "--listen", "", "--audit-log", filepath.Join(dir, "a.jsonl")}, tt.flags...)
			res := runVramseal(t, dir, args...)
			assert.Equal(t, exitUsage, res.code, "stderr:\n%s", res.stderr)
			lines := strings.Split(strings.TrimRight(res.stderr, "\n"), "\n")
			require.Len(t, lines, 1, "one line: %s", res.stderr)
			assert.Contains(t, lines[0], tt.want)
			assert.NoFileExists(t, filepath.Join(dir, "a.jsonl"))
		})
	}
}

func TestInBoundsFlagsPass(t *testing.T) {
	o := &runOptions{verifyInterval: minVerifyInterval, contentionInterval: minContentionInterval}
	o.scrubRate.bytesPerSecond = minScrubRate
	o.headroom.bytes = maxHeadroom
	assert.NoError(t, o.checkBounds())
	o.verifyInterval, o.scrubRate.bytesPerSecond = 0, 0 // off, unlimited
	assert.NoError(t, o.checkBounds())
	b := &backendFlags{simDevices: maxSimDevices, simVRAM: sizeFlag{bytes: maxSimVRAM}}
	assert.NoError(t, b.checkBounds())
}

func TestAFastScrubWarnsOfTheAuditVolume(t *testing.T) {
	var logged bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logged, nil))
	o := &runOptions{verifyInterval: 100 * time.Millisecond}
	o.warnAuditVolume(3, logger) // 3 x 350 B x 600 a minute: 630 KB
	assert.Empty(t, logged.String())
	o.warnAuditVolume(40, logger) // 8.4 MB a minute
	assert.Contains(t, logged.String(), "raise --verify-interval")
	assert.Contains(t, logged.String(), "audit_per_minute=\"8.0 MiB\"")
}
