package audit

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVerifyAcceptsEmptyLinesAtTheEndOnly(t *testing.T) {
	key := testKey(t, "w1")
	intact := bytes.Join(buildLines(t, key, 5), nil)
	tests := []struct {
		name     string
		log      []byte
		firstBad int
	}{
		{"one trailing newline", append(bytes.Clone(intact), '\n'), 0},
		{"several", append(bytes.Clone(intact), "\n\n\n"...), 0},
		{"an empty line between records", bytes.Replace(intact, []byte("}\n{"), []byte("}\n\n{"), 1), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Verify(iotest.OneByteReader(bytes.NewReader(tt.log)), key)
			if tt.firstBad == 0 {
				require.NoError(t, err)
				assert.Equal(t, 5, rep.Records)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.firstBad, rep.FirstBad)
		})
	}
}

func TestBlankTailTrimmerPassesEverythingButTheBlankTail(t *testing.T) {
	for in, want := range map[string]string{
		"":               "",
		"\n":             "\n",
		"a\n":            "a\n",
		"a\n\n":          "a\n",
		"a\n\n\nb\n\n\n": "a\n\n\nb\n",
		"a":              "a",
		"\n\n":           "\n",
	} {
		out, err := io.ReadAll(iotest.HalfReader(withoutBlankTail(strings.NewReader(in))))
		require.NoError(t, err)
		assert.Equal(t, want, string(out), "%q", in)
	}
}

func TestSummarizeSaysWhoWhenWhatWasCriticalAndHowTheWorkerStopped(t *testing.T) {
	key := testKey(t, "w1")
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	log, err := Open(path, LogConfig{Key: key, WorkerID: "w1"})
	require.NoError(t, err)
	ctx := context.Background()
	for _, r := range []Record{
		{Event: EventWorkerStarted, Severity: SeverityInfo, Fields: map[string]any{"key_fingerprint": "abc123"}},
		{Event: EventVramSealed, Severity: SeverityInfo},
		{Event: EventWorkerStopped, Severity: SeverityInfo, Fields: map[string]any{"graceful": true}},
		{Event: EventWorkerStarted, Severity: SeverityInfo, Fields: map[string]any{"key_fingerprint": "abc123", "backend": "sim"}},
		{Event: EventSealVerificationFailed, Severity: SeverityCritical, Fields: map[string]any{"shard_id": "s"}},
		{Event: EventWorkerStopped, Severity: SeverityCritical, Fields: map[string]any{"graceful": false, "cause": "shard \"s\": chunk 3 does not match"}},
	} {
		require.NoError(t, log.Record(ctx, r))
	}
	require.NoError(t, log.Close())
	data, err := os.ReadFile(path)
	require.NoError(t, err)

	s, err := Summarize(bytes.NewReader(append(data, '\n')), -1)
	require.NoError(t, err)
	assert.Equal(t, 6, s.Records)
	assert.Equal(t, []string{"w1"}, s.Workers)
	assert.False(t, s.First.IsZero())
	assert.False(t, s.Last.Before(s.First))
	assert.Equal(t, map[string]int{EventSealVerificationFailed: 1, EventWorkerStopped: 1}, s.Critical)
	require.NotNil(t, s.LastStop)
	assert.False(t, s.LastStop.Graceful)
	assert.Equal(t, "shard \"s\": chunk 3 does not match", s.LastStop.Cause)
	assert.Equal(t, []string{"abc123"}, s.KeyFingerprints)
	assert.Equal(t, []string{"", "sim"}, s.Backends, "the first WorkerStarted names no backend")

	first3, err := Summarize(bytes.NewReader(data), 3)
	require.NoError(t, err)
	assert.Equal(t, 3, first3.Records)
	assert.Empty(t, first3.Critical)
	assert.True(t, first3.LastStop.Graceful)

	none, err := Summarize(strings.NewReader("not a record\n"), -1)
	require.NoError(t, err)
	assert.Zero(t, none.Records)
	assert.Nil(t, none.LastStop)
}
