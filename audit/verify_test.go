package audit

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
)

// buildLines returns the lines of an intact log of n records under k, each
// ending in a newline, built in memory.
func buildLines(t testing.TB, k *Key, n int) [][]byte {
	t.Helper()
	c := newChain(k)
	start := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	lines := make([][]byte, n)
	for i := range n {
		tail, err := encodeTail(k.WorkerID(), Record{
			Event:    EventSealVerified,
			Severity: SeverityInfo,
			Fields:   map[string]any{"shard": fmt.Sprintf("shard-%d", i+1)},
		})
		require.NoError(t, err)
		lines[i] = c.appendLine(nil, uint64(i+1), appendTime(nil, start.Add(time.Duration(i)*time.Millisecond)), tail)
	}
	return lines
}

// replaceIn returns a copy of line with old replaced by new once; old must
// be there.
func replaceIn(t testing.TB, line []byte, old, new string) []byte {
	t.Helper()
	require.Contains(t, string(line), old)
	return bytes.Replace(line, []byte(old), []byte(new), 1)
}

func TestVerifyNamesTheFirstBadLine(t *testing.T) {
	key := testKey(t, "w1")
	const n = 10
	tests := []struct {
		name    string
		key     *Key
		tamper  func(t *testing.T, lines [][]byte) [][]byte
		bad     int // expected FirstBad
		records int // expected Records
		reason  string
	}{
		{"intact", key, func(_ *testing.T, l [][]byte) [][]byte { return l }, 0, n, ""},
		{"empty", key, func(_ *testing.T, _ [][]byte) [][]byte { return nil }, 0, 0, ""},
		{"field edited", key, func(t *testing.T, l [][]byte) [][]byte {
			l[4] = replaceIn(t, l[4], "shard-5", "shard-6")
			return l
		}, 5, 4, ReasonEdited},
		{"seq edited", key, func(t *testing.T, l [][]byte) [][]byte {
			l[4] = replaceIn(t, l[4], `{"seq":5,`, `{"seq":7,`)
			return l
		}, 5, 4, ReasonEdited},
		{"mac edited", key, func(t *testing.T, l [][]byte) [][]byte {
			mac := l[4][len(l[4])-macHexLen-3 : len(l[4])-3]
			l[4] = replaceIn(t, l[4], string(mac), strings.Repeat("0", macHexLen))
			return l
		}, 5, 4, ReasonEdited},
		{"bad JSON", key, func(t *testing.T, l [][]byte) [][]byte {
			l[4] = replaceIn(t, l[4], `"event":`, `"event"`)
			return l
		}, 5, 4, ReasonEdited},
		{"line replaced by garbage", key, func(_ *testing.T, l [][]byte) [][]byte {
			l[4] = []byte("hello\n")
			return l
		}, 5, 4, ReasonEdited},
		{"line too long", key, func(_ *testing.T, l [][]byte) [][]byte {
			l[4] = append(bytes.Repeat([]byte("x"), MaxLineBytes+10), '\n')
			return l
		}, 5, 4, ReasonEdited},
		{"worker_id edited on the first line", key, func(t *testing.T, l [][]byte) [][]byte {
			l[0] = replaceIn(t, l[0], `"worker_id":"w1"`, `"worker_id":"w9"`)
			return l
		}, 1, 0, ReasonEdited},
		{"key of another worker", testKey(t, "w2"), func(_ *testing.T, l [][]byte) [][]byte { return l }, 1, 0, ReasonEdited},
		{"line deleted", key, func(_ *testing.T, l [][]byte) [][]byte { return slices.Delete(l, 4, 5) }, 5, 4, ReasonMissing},
		{"lines deleted", key, func(_ *testing.T, l [][]byte) [][]byte { return slices.Delete(l, 4, 7) }, 5, 4, ReasonMissing},
		{"first line deleted", key, func(_ *testing.T, l [][]byte) [][]byte { return l[1:] }, 1, 0, ReasonMissing},
		{"adjacent lines swapped", key, func(_ *testing.T, l [][]byte) [][]byte {
			l[4], l[5] = l[5], l[4]
			return l
		}, 5, 4, ReasonReordered},
		{"line moved earlier", key, func(_ *testing.T, l [][]byte) [][]byte {
			moved := l[7]
			return slices.Insert(slices.Delete(l, 7, 8), 2, moved)
		}, 3, 2, ReasonReordered},
		{"line moved to the end", key, func(_ *testing.T, l [][]byte) [][]byte {
			moved := l[2]
			return append(slices.Delete(l, 2, 3), moved)
		}, 3, 2, ReasonReordered},
		{"line repeated", key, func(_ *testing.T, l [][]byte) [][]byte { return slices.Insert(l, 5, l[4]) }, 6, 5, ReasonInserted},
		{"old line appended", key, func(_ *testing.T, l [][]byte) [][]byte { return append(l, l[1]) }, n + 1, n, ReasonInserted},
		{"forged line inserted", key, func(t *testing.T, l [][]byte) [][]byte {
			return slices.Insert(l, 4, replaceIn(t, l[4], "shard-5", "shard-forged"))
		}, 5, 4, ReasonInserted},
		{"blank line inserted", key, func(_ *testing.T, l [][]byte) [][]byte { return slices.Insert(l, 5, []byte("\n")) }, 6, 5, ReasonInserted},
		{"last line cut mid-line", key, func(_ *testing.T, l [][]byte) [][]byte {
			l[n-1] = l[n-1][:30]
			return l
		}, n, n - 1, ReasonTruncated},
		{"last newline missing", key, func(_ *testing.T, l [][]byte) [][]byte {
			l[n-1] = l[n-1][:len(l[n-1])-1]
			return l
		}, 0, n, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := tt.tamper(t, buildLines(t, key, n))
			rep, err := Verify(bytes.NewReader(bytes.Join(lines, nil)), tt.key)

			assert.Equal(t, tt.bad, rep.FirstBad, "first bad line; detail: %s", rep.Detail)
			assert.Equal(t, tt.reason, rep.Reason, "detail: %s", rep.Detail)
			assert.Equal(t, tt.records, rep.Records)
			assert.Equal(t, tt.key.WorkerID(), rep.WorkerID)
			assert.Equal(t, tt.bad == 0, rep.Intact())
			if tt.bad == 0 {
				assert.NoError(t, err)
				assert.Empty(t, rep.Detail)
			} else {
				assert.ErrorIs(t, err, messages.ErrIntegrityViolation)
				assert.Contains(t, err.Error(), tt.reason)
				assert.NotEmpty(t, rep.Detail)
				assertNoSecret(t, err.Error(), testKeyBytes(t, tt.key.WorkerID()))
			}
			if tt.records == 0 {
				assert.Empty(t, rep.Head)
			} else {
				assert.Equal(t, macOf(t, lines[tt.records-1]), rep.Head)
			}
		})
	}
}

// macOf is the hex mac written at the end of a line.
func macOf(t testing.TB, line []byte) string {
	t.Helper()
	p, err := parseLine(bytes.TrimSuffix(line, []byte("\n")))
	require.NoError(t, err)
	return hex.EncodeToString(p.mac[:])
}

func TestVerifyLargeIntactLog(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	key := testKey(t, "w1")
	tail, err := encodeTail(key.WorkerID(), Record{Event: EventVramSealed, Severity: SeverityInfo, Fields: map[string]any{"shard": "s", "bytes": 4096}})
	require.NoError(t, err)
	c := newChain(key)
	var log []byte
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range n {
		log = c.appendLine(log, uint64(i+1), appendTime(nil, start.Add(time.Duration(i))), tail)
	}

	rep, err := Verify(bytes.NewReader(log), key)
	require.NoError(t, err)
	assert.Equal(t, n, rep.Records)
	assert.True(t, rep.Intact())
	assert.Equal(t, hex.EncodeToString(c.prev[:]), rep.Head)
}

func TestVerifyReportsReadErrors(t *testing.T) {
	key := testKey(t, "w1")
	lines := buildLines(t, key, 3)
	broken := errors.New("disk on fire")
	r := io.MultiReader(bytes.NewReader(bytes.Join(lines, nil)), iotest.ErrReader(broken))

	rep, err := Verify(r, key)
	assert.ErrorIs(t, err, broken)
	assert.NotErrorIs(t, err, messages.ErrIntegrityViolation)
	assert.Equal(t, 3, rep.Records)
}

func FuzzVerify(f *testing.F) {
	key := testKey(f, "w1")
	lines := buildLines(f, key, 4)
	f.Add(bytes.Join(lines, nil))
	f.Add(bytes.Join([][]byte{lines[0], lines[2], lines[1], lines[3]}, nil))
	f.Add(bytes.Join([][]byte{lines[0], lines[1], lines[1]}, nil))
	f.Add(lines[0][:40])
	f.Add([]byte("\n\n"))
	f.Add(bytes.TrimSuffix(bytes.Join(lines, nil), []byte("\n")))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := Verify(bytes.NewReader(data), key)
		assert.Equal(t, rep.Intact(), err == nil)
		if rep.Intact() {
			records := bytes.Count(data, []byte("\n"))
			if len(data) > 0 && data[len(data)-1] != '\n' {
				records++ // a last record lacking only its newline counts
			}
			assert.Equal(t, records, rep.Records)
			return
		}
		assert.ErrorIs(t, err, messages.ErrIntegrityViolation)
		assert.Equal(t, rep.Records+1, rep.FirstBad)
		assert.Contains(t, []string{ReasonEdited, ReasonMissing, ReasonReordered, ReasonInserted, ReasonTruncated}, rep.Reason)
	})
}
