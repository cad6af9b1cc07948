package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
)

// headOf is the head a written line stands for.
func headOf(t testing.TB, l writtenLine) Head {
	t.Helper()
	at, err := time.Parse(TimeLayout, l.Time)
	require.NoError(t, err)
	return Head{WorkerID: l.WorkerID, Seq: l.Seq, MAC: l.MAC, Time: at}
}

func TestLogHeadIsItsLastDurableRecordAcrossOpens(t *testing.T) {
	key := testKey(t, "w1")
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, LogConfig{Key: key, Now: newStepClock().Now})
	require.NoError(t, err)
	assert.Equal(t, Head{WorkerID: "w1"}, l.Head(), "a new log has no record")
	for i := range 3 {
		require.NoError(t, l.Record(context.Background(), record(i)))
		lines := readLog(t, path)
		assert.Equal(t, headOf(t, lines[len(lines)-1]), l.Head())
	}
	require.NoError(t, l.Close())
	lines := readLog(t, path)
	last := headOf(t, lines[len(lines)-1])
	assert.Equal(t, last, l.Head(), "after Close too")

	again, err := Open(path, LogConfig{Key: key})
	require.NoError(t, err)
	defer again.Close()
	assert.Equal(t, last, again.Head(), "a reopened log starts at the head it found")
}

// writeLog writes n records to a new log under key and returns its path.
func writeLog(t *testing.T, key *Key, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, LogConfig{Key: key})
	require.NoError(t, err)
	for i := range n {
		require.NoError(t, l.Record(context.Background(), record(i)))
	}
	require.NoError(t, l.Close())
	return path
}

func TestVerifyHeadsCatchesACutAndADivergedLog(t *testing.T) {
	key := testKey(t, "w1")
	path := writeLog(t, key, 5)
	lines := readLog(t, path)
	h3, h5 := headOf(t, lines[2]), headOf(t, lines[4])
	data := mustRead(t, path)
	cut := data[:bytes.Index(data, []byte(`{"seq":4,`))]

	t.Run("held", func(t *testing.T) {
		rep, hr, err := VerifyHeads(bytes.NewReader(data), key, []Head{h5, h3, h3})
		require.NoError(t, err)
		assert.Equal(t, 5, rep.Records)
		assert.Equal(t, HeadReport{Checked: 2, Matched: 2, LastMatched: &h5}, hr)
	})
	t.Run("truncated", func(t *testing.T) {
		rep, err := Verify(bytes.NewReader(cut), key)
		require.NoError(t, err, "the chain alone cannot see the cut")
		assert.Equal(t, 3, rep.Records)
		_, hr, err := VerifyHeads(bytes.NewReader(cut), key, []Head{h3, h5})
		require.ErrorIs(t, err, ErrHeadMismatch)
		assert.Equal(t, HeadTruncated, hr.Problem)
		assert.Equal(t, &h5, hr.Missed)
		assert.Equal(t, &h3, hr.LastMatched)
		assert.Contains(t, hr.Detail, "the log ends at seq 3, before the published head at seq 5")
	})
	t.Run("diverged", func(t *testing.T) {
		other := mustRead(t, writeLog(t, key, 5)) // the same key, other times: other macs
		_, hr, err := VerifyHeads(bytes.NewReader(other), key, []Head{h3})
		require.ErrorIs(t, err, ErrHeadMismatch)
		assert.Equal(t, HeadDiverged, hr.Problem)
		assert.Nil(t, hr.LastMatched)
	})
	t.Run("tampered", func(t *testing.T) {
		edited := bytes.Replace(data, []byte("shard-1"), []byte("shard-9"), 1)
		_, _, err := VerifyHeads(bytes.NewReader(edited), key, []Head{h3})
		require.ErrorIs(t, err, messages.ErrIntegrityViolation, "a broken chain is reported as such, before heads")
	})
	t.Run("bad heads", func(t *testing.T) {
		for name, heads := range map[string][]Head{
			"other worker": {{WorkerID: "w2", Seq: 3, MAC: h3.MAC}},
			"short mac":    {{Seq: 3, MAC: "abc"}},
			"two macs":     {h3, {Seq: 3, MAC: h5.MAC}},
		} {
			_, _, err := VerifyHeads(bytes.NewReader(data), key, heads)
			assert.ErrorIs(t, err, messages.ErrInvalidInput, name)
		}
	})
}

func TestParseHeadReadsEveryShippedForm(t *testing.T) {
	mac := strings.Repeat("ab", 32)
	want := Head{WorkerID: "w 1", Seq: 12, MAC: mac}
	for name, line := range map[string]string{
		"json log line":  `{"time":"2026-01-02T03:04:05Z","level":"INFO","msg":"audit head","worker_id":"w 1","seq":12,"mac":"` + mac + `","record_time":"x"}`,
		"endpoint":       `{"worker_id":"w 1","seq":12,"mac":"` + strings.ToUpper(mac) + `","time":"2026-01-02T03:04:05Z"}`,
		"text log line":  `time=2026-01-02T03:04:05.000Z level=INFO msg="audit head" worker_id="w 1" seq=12 mac=` + mac + ` record_time=2026`,
		"brace in text":  `time=2026 level=INFO msg="audit head" worker_id="w 1" seq=12 mac=` + mac + ` note="{"`,
		"journal prefix": `Dec 07 07:00:00 gpu1 vramseal[42]: time=2026 level=INFO msg="audit head" worker_id="w 1" seq=12 mac=` + mac,
	} {
		got, err := ParseHeadLine(line)
		require.NoError(t, err, name)
		assert.Equal(t, want, got, name)
	}
	got, err := ParseHeadLine(" 12:" + mac + "\n")
	require.NoError(t, err)
	assert.Equal(t, Head{Seq: 12, MAC: mac}, got)

	for _, bad := range []string{
		"", "12", "12:", ":" + mac, "0:" + mac, "-1:" + mac, "+1:" + mac, "1:" + mac[:63], "1:" + mac + "0",
		"1:" + strings.Repeat("g", 64), "99999999999999999999:" + mac, "x:" + mac,
		`{"msg":"worker started","seq":1,"mac":"` + mac + `"}`, `{"seq":1}`, `{"seq":-1,"mac":"` + mac + `"}`, `{`,
		`msg="audit head" seq=1`, `msg="audit head seq=1`, `msg=other seq=1 mac=` + mac, `level=INFO msg`,
	} {
		_, err := ParseHeadLine(bad)
		assert.ErrorIs(t, err, ErrBadHead, "%q", bad)
	}
}

func TestHeadPublisherPublishesAtStartAfterCriticalRecordsAfterBurstsAndAtClose(t *testing.T) {
	key := testKey(t, "w1")
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, LogConfig{Key: key})
	require.NoError(t, err)
	published := make(chan Head, 16)
	p := PublishHeads(l, HeadConfig{Publish: func(h Head) { published <- h }, Interval: time.Hour})
	defer p.Close()
	next := func(what string) Head {
		t.Helper()
		select {
		case h := <-published:
			return h
		case <-time.After(10 * time.Second):
			require.FailNow(t, "no head published", what)
			return Head{}
		}
	}
	lastLine := func() Head {
		lines := readLog(t, path)
		return headOf(t, lines[len(lines)-1])
	}
	ctx := context.Background()

	p.Publish()
	require.NoError(t, p.Record(ctx, Record{Event: EventWorkerStarted, Severity: SeverityInfo}))
	p.Publish()
	assert.Equal(t, lastLine(), next("at start"), "an empty log publishes nothing; the first record does")

	require.NoError(t, p.Record(ctx, Record{Event: EventSealVerificationFailed, Severity: SeverityCritical}))
	select {
	case h := <-published:
		assert.Equal(t, lastLine(), h, "a critical record is published before Record returns")
	default:
		require.Fail(t, "a critical record was not published before Record returned")
	}

	for i := range 3 {
		require.NoError(t, p.Record(ctx, record(i)))
	}
	assert.Equal(t, lastLine(), next("after a burst"), "a burst is published once it is quiet, long before the interval")

	require.NoError(t, l.Close())
	p.Close()
	assert.Equal(t, lastLine(), next("at close"), "Close publishes the last head, changed or not")
	p.Close()
	assert.Empty(t, published, "each head once; a second Close does nothing")
}

func TestHeadPublisherPublishesWithinItsIntervalWhileRecordsFlow(t *testing.T) {
	key := testKey(t, "w1")
	l, err := Open(filepath.Join(t.TempDir(), "audit.log"), LogConfig{Key: key})
	require.NoError(t, err)
	defer l.Close()
	published := make(chan Head, 64)
	p := PublishHeads(l, HeadConfig{Publish: func(h Head) { published <- h }, Interval: 200 * time.Millisecond})
	defer p.Close()
	deadline := time.After(10 * time.Second)
	for i := 0; ; i++ {
		require.NoError(t, l.Record(context.Background(), record(i))) // never quiet for a tick
		select {
		case h := <-published:
			assert.Positive(t, h.Seq)
			return
		case <-deadline:
			require.FailNow(t, "no head published while records flowed")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestHeadLogAttrsReadBack(t *testing.T) {
	h := Head{WorkerID: "w1", Seq: 9, MAC: strings.Repeat("0f", 32), Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	var b strings.Builder
	fmt.Fprintf(&b, "msg=%q", HeadLogMessage)
	attrs := h.LogAttrs()
	for i := 0; i < len(attrs); i += 2 {
		fmt.Fprintf(&b, " %v=%v", attrs[i], attrs[i+1])
	}
	got, err := ParseHeadLine(b.String())
	require.NoError(t, err)
	assert.Equal(t, Head{WorkerID: "w1", Seq: 9, MAC: h.MAC}, got)
	assert.False(t, errors.Is(err, ErrBadHead))
}

// mustRead reads the file at path.
func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}
