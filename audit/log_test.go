package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
)

// stepClock is a clock for tests that moves one millisecond per reading.
type stepClock struct {
	start time.Time
	ticks atomic.Int64
}

func newStepClock() *stepClock {
	return &stepClock{start: time.Date(2026, 3, 4, 5, 6, 7, 8, time.FixedZone("CET", 3600))}
}

// Now returns the next reading.
func (c *stepClock) Now() time.Time {
	return c.start.Add(time.Duration(c.ticks.Add(1)-1) * time.Millisecond)
}

// writtenLine is a log line as JSON.
type writtenLine struct {
	Seq      uint64         `json:"seq"`
	Time     string         `json:"time"`
	WorkerID string         `json:"worker_id"`
	Event    string         `json:"event"`
	Severity string         `json:"severity"`
	Fields   map[string]any `json:"fields"`
	MAC      string         `json:"mac"`
}

// readLog parses every line of the log at path.
func readLog(t testing.TB, path string) []writtenLine {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var lines []writtenLine
	for _, raw := range bytes.SplitAfter(data, []byte("\n")) {
		if len(raw) == 0 {
			continue
		}
		require.True(t, bytes.HasSuffix(raw, []byte("\n")), "unterminated line %q", raw)
		var l writtenLine
		require.NoError(t, json.Unmarshal(raw, &l), "line %q", raw)
		lines = append(lines, l)
	}
	return lines
}

// verifyFile verifies the log at path and requires it intact.
func verifyFile(t testing.TB, path string, key *Key) Report {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	rep, err := Verify(f, key)
	require.NoError(t, err)
	return rep
}

// record is a valid record for tests.
func record(i int) Record {
	return Record{Event: EventVramSealed, Severity: SeverityInfo, Fields: map[string]any{"shard": fmt.Sprintf("shard-%d", i), "bytes": 4096}}
}

func TestLogWritesChainedJSONLines(t *testing.T) {
	key := testKey(t, "w1")
	path := filepath.Join(t.TempDir(), "audit.log")
	clock := newStepClock()
	l, err := Open(path, LogConfig{Key: key, WorkerID: "w1", Now: clock.Now})
	require.NoError(t, err)

	ctx := context.Background()
	require.NoError(t, l.Record(ctx, record(1)))
	require.NoError(t, l.Record(ctx, Record{Event: EventWorkerStopped, Severity: SeverityCritical}))
	require.NoError(t, l.Close())

	lines := readLog(t, path)
	require.Len(t, lines, 2)
	for i, line := range lines {
		assert.Equal(t, uint64(i+1), line.Seq)
		assert.Equal(t, clock.start.Add(time.Duration(i)*time.Millisecond).UTC().Format(TimeLayout), line.Time)
		assert.True(t, strings.HasSuffix(line.Time, "Z"), "time %s is not UTC", line.Time)
		assert.Equal(t, "w1", line.WorkerID)
		assert.Len(t, line.MAC, macHexLen)
	}
	assert.Equal(t, EventVramSealed, lines[0].Event)
	assert.Equal(t, "info", lines[0].Severity)
	assert.Equal(t, map[string]any{"shard": "shard-1", "bytes": 4096.0}, lines[0].Fields)
	assert.Equal(t, EventWorkerStopped, lines[1].Event)
	assert.Equal(t, "critical", lines[1].Severity)
	assert.Empty(t, lines[1].Fields)

	rep := verifyFile(t, path, key)
	assert.Equal(t, 2, rep.Records)
	assert.Equal(t, lines[1].MAC, rep.Head)

	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

func TestLogContinuesAcrossOpens(t *testing.T) {
	key := testKey(t, "w1")
	path := filepath.Join(t.TempDir(), "audit.log")
	ctx := context.Background()
	for run := range 3 {
		l, err := Open(path, LogConfig{Key: key})
		require.NoError(t, err)
		assert.Equal(t, uint64(2*run), l.Stats().LastSeq)
		require.NoError(t, l.Record(ctx, record(2*run+1)))
		require.NoError(t, l.Record(ctx, record(2*run+2)))
		require.NoError(t, l.Close())
	}

	lines := readLog(t, path)
	require.Len(t, lines, 6)
	for i, line := range lines {
		assert.Equal(t, uint64(i+1), line.Seq)
		assert.Equal(t, fmt.Sprintf("shard-%d", i+1), line.Fields["shard"])
	}
	assert.Equal(t, 6, verifyFile(t, path, key).Records)
}

func TestRecordAfterCloseIsStopped(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "audit.log"), LogConfig{Key: testKey(t, "w1")})
	require.NoError(t, err)
	require.NoError(t, l.Close())

	assert.ErrorIs(t, l.Record(context.Background(), record(1)), messages.ErrStopped)
	assert.NoError(t, l.Close(), "a second Close returns the first one's result")
	assert.Equal(t, uint64(0), l.Stats().Records)
}

func TestOpenRefusesLooseFilePermissions(t *testing.T) {
	key := testKey(t, "w1")
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o602} {
		t.Run(mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			require.NoError(t, os.WriteFile(path, nil, 0o600))
			require.NoError(t, os.Chmod(path, mode))

			l, err := Open(path, LogConfig{Key: key})
			assert.Nil(t, l)
			assert.ErrorIs(t, err, messages.ErrConfig)
			assert.ErrorContains(t, err, "chmod 600 "+path)
		})
	}
}

func TestOpenRefusesADamagedLog(t *testing.T) {
	key := testKey(t, "w1")
	lines := buildLines(t, key, 5)
	tests := []struct {
		name   string
		log    [][]byte
		reason string
	}{
		{"line deleted", [][]byte{lines[0], lines[1], lines[3], lines[4]}, ReasonMissing},
		{"line edited", [][]byte{lines[0], replaceIn(t, lines[1], "shard-2", "shard-x"), lines[2]}, ReasonEdited},
		{"torn line in the middle", [][]byte{lines[0], lines[1][:20], lines[2]}, ReasonEdited},
		{"lines swapped", [][]byte{lines[0], lines[2], lines[1]}, ReasonReordered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			data := bytes.Join(tt.log, nil)
			require.NoError(t, os.WriteFile(path, data, 0o600))

			l, err := Open(path, LogConfig{Key: key})
			assert.Nil(t, l)
			assert.ErrorIs(t, err, messages.ErrIntegrityViolation)
			assert.ErrorContains(t, err, tt.reason)
			after, rerr := os.ReadFile(path)
			require.NoError(t, rerr)
			assert.Equal(t, data, after, "a damaged log is left as it is")
		})
	}
}

func TestOpenCutsATornLastLine(t *testing.T) {
	key := testKey(t, "w1")
	lines := buildLines(t, key, 4)
	tests := []struct {
		name string
		torn []byte
	}{
		{"cut mid-line", lines[3][:37]},
		{"whole but for its newline, and its mac wrong", macFlipped(lines[3][:len(lines[3])-1])},
		{"zeros", make([]byte, 100)},
		{"one byte", []byte("{")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			require.NoError(t, os.WriteFile(path, append(bytes.Join(lines[:3], nil), tt.torn...), 0o600))
			var logged bytes.Buffer

			l, err := Open(path, LogConfig{Key: key, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
			require.NoError(t, err)
			assert.Equal(t, uint64(4), l.Stats().LastSeq)
			require.NoError(t, l.Record(context.Background(), record(5)))
			require.NoError(t, l.Close())

			got := readLog(t, path)
			require.Len(t, got, 5)
			assert.Equal(t, EventLogTruncated, got[3].Event)
			assert.Equal(t, "warning", got[3].Severity)
			assert.Equal(t, map[string]any{"bytes_cut": float64(len(tt.torn)), "after_seq": 3.0}, got[3].Fields)
			assert.Equal(t, uint64(5), got[4].Seq)
			assert.Equal(t, 5, verifyFile(t, path, key).Records)
			assert.Contains(t, logged.String(), "torn")
			assertNoSecret(t, logged.String(), testKeyBytes(t, key.WorkerID()))
		})
	}
}

// macFlipped is line with one hex digit of its mac (which ends it, before
// the closing brace) changed.
func macFlipped(line []byte) []byte {
	out := bytes.Clone(line)
	i := bytes.LastIndexByte(out, '"') - 1
	if out[i] == '0' {
		out[i] = '1'
	} else {
		out[i] = '0'
	}
	return out
}

func TestOpenKeepsALastRecordMissingOnlyItsNewline(t *testing.T) {
	key := testKey(t, "w1")
	lines := buildLines(t, key, 4)
	path := filepath.Join(t.TempDir(), "audit.log")
	data := bytes.Join(lines, nil)
	require.NoError(t, os.WriteFile(path, data[:len(data)-1], 0o600))

	l, err := Open(path, LogConfig{Key: key})
	require.NoError(t, err)
	assert.Equal(t, uint64(4), l.Stats().LastSeq, "the record is kept")
	require.NoError(t, l.Record(context.Background(), record(5)))
	require.NoError(t, l.Close())

	got := readLog(t, path)
	require.Len(t, got, 5)
	assert.Equal(t, []string{EventSealVerified, EventSealVerified, EventSealVerified, EventSealVerified, EventVramSealed}, eventsOf(got), "no LogTruncated: nothing was cut")
	assert.Equal(t, "shard-4", got[3].Fields["shard"])
	assert.Equal(t, 5, verifyFile(t, path, key).Records)
}

func TestOpenRefusesASecondWriter(t *testing.T) {
	key := testKey(t, "w1")
	path := filepath.Join(t.TempDir(), "audit.log")
	first, err := Open(path, LogConfig{Key: key})
	require.NoError(t, err)

	second, err := Open(path, LogConfig{Key: key})
	assert.Nil(t, second)
	assert.ErrorIs(t, err, messages.ErrConfig)

	require.NoError(t, first.Close())
	third, err := Open(path, LogConfig{Key: key})
	require.NoError(t, err, "the lock goes with the first writer")
	require.NoError(t, third.Close())
}

func TestOpenChecksItsConfig(t *testing.T) {
	key := testKey(t, "w1")
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	tests := []struct {
		name string
		path string
		cfg  LogConfig
	}{
		{"no key", path, LogConfig{}},
		{"another worker's ID", path, LogConfig{Key: key, WorkerID: "w2"}},
		{"negative queue", path, LogConfig{Key: key, QueueSize: -1}},
		{"unknown sync mode", path, LogConfig{Key: key, Sync: SyncMode(9)}},
		{"missing directory", filepath.Join(dir, "nope", "audit.log"), LogConfig{Key: key}},
		{"a directory", dir, LogConfig{Key: key}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Open(tt.path, tt.cfg)
			assert.Nil(t, l)
			assert.ErrorIs(t, err, messages.ErrConfig)
			assertNoSecret(t, err.Error(), testKeyBytes(t, key.WorkerID()))
		})
	}
	_, err := os.Stat(path)
	assert.ErrorIs(t, err, os.ErrNotExist, "a bad config creates no file")
}

func TestRecordRefusesInvalidRecords(t *testing.T) {
	key := testKey(t, "w1")
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, LogConfig{Key: key})
	require.NoError(t, err)
	defer func() { require.NoError(t, l.Close()) }()

	tests := []struct {
		name string
		r    Record
	}{
		{"no event", Record{Severity: SeverityInfo}},
		{"no severity", Record{Event: EventVramSealed}},
		{"unknown severity", Record{Event: EventVramSealed, Severity: Severity(7)}},
		{"field that is not JSON", Record{Event: EventVramSealed, Severity: SeverityInfo, Fields: map[string]any{"c": make(chan int)}}},
		{"too long", Record{Event: EventVramSealed, Severity: SeverityInfo, Fields: map[string]any{"x": strings.Repeat("a", MaxLineBytes)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, l.Record(context.Background(), tt.r), messages.ErrInvalidInput)
		})
	}
	require.NoError(t, l.Record(context.Background(), record(1)), "invalid records leave the log working")
	assert.Equal(t, uint64(1), l.Stats().LastSeq)
}

func TestRecordHonoursAnEndedContext(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "audit.log"), LogConfig{Key: testKey(t, "w1")})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	assert.ErrorIs(t, l.Record(ctx, record(1)), context.Canceled)
	require.NoError(t, l.Close())
	assert.Equal(t, uint64(0), l.Stats().Records)
}

func TestSyncModesAllWriteAnIntactLog(t *testing.T) {
	key := testKey(t, "w1")
	for _, mode := range []SyncMode{GroupCommit, SyncEach, NoSync} {
		t.Run(mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			l, err := Open(path, LogConfig{Key: key, Sync: mode})
			require.NoError(t, err)
			for i := range 5 {
				require.NoError(t, l.Record(context.Background(), record(i)))
			}
			st := l.Stats()
			require.NoError(t, l.Close())

			assert.Equal(t, uint64(5), st.Records)
			assert.Equal(t, uint64(5), st.LastSeq)
			if mode == NoSync {
				assert.Zero(t, st.Syncs)
			} else {
				assert.Equal(t, st.Writes, st.Syncs)
			}
			info, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, uint64(info.Size()), st.Bytes)
			assert.Equal(t, 5, verifyFile(t, path, key).Records)
		})
	}
}

func TestLogRevealsNoKey(t *testing.T) {
	key := testKey(t, "w1")
	cfg := LogConfig{Key: key, WorkerID: "w1"}
	l, err := Open(filepath.Join(t.TempDir(), "audit.log"), cfg)
	require.NoError(t, err)
	require.NoError(t, l.Record(context.Background(), record(1)))
	for _, format := range []string{"%v", "%+v", "%#v", "%x"} {
		for name, v := range map[string]any{"config": cfg, "config pointer": &cfg, "log": l} {
			t.Run(name+" "+format, func(t *testing.T) {
				assertNoSecret(t, fmt.Sprintf(format, v), testKeyBytes(t, key.WorkerID()))
			})
		}
	}
	require.NoError(t, l.Close())
}
