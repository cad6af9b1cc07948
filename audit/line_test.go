package audit

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLineRoundTrip(t *testing.T) {
	key := testKey(t, "w1")
	tests := []struct {
		name string
		r    Record
		at   time.Time
	}{
		{"no fields", Record{Event: EventWorkerStarted, Severity: SeverityInfo}, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"fields", record(1), time.Date(2026, 1, 2, 3, 4, 5, 123, time.FixedZone("X", -7*3600))},
		{"characters to escape", Record{Event: "Odd\"Event\n<&>", Severity: SeverityWarning, Fields: map[string]any{"k\"": "v\\\n"}}, time.Unix(0, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tail, err := encodeTail("w1", tt.r)
			require.NoError(t, err)
			c := newChain(key)
			genesis := c.prev
			line := c.appendLine(nil, 42, appendTime(nil, tt.at), tail)
			require.True(t, bytes.HasSuffix(line, []byte("\n")))
			require.Equal(t, 1, bytes.Count(line, []byte("\n")), "one line, whatever the fields hold")

			p, err := parseLine(line[:len(line)-1])
			require.NoError(t, err)
			assert.Equal(t, uint64(42), p.Seq)
			assert.Equal(t, "w1", p.WorkerID)
			assert.Equal(t, c.prev, p.mac)
			assert.True(t, c.follows(&genesis, &p))

			var got writtenLine
			require.NoError(t, json.Unmarshal(line, &got))
			assert.Equal(t, tt.at.UTC().Format(TimeLayout), got.Time)
			assert.Len(t, got.Time, len("2006-01-02T15:04:05.000000000Z"))
			assert.Equal(t, tt.r.Event, got.Event)
			assert.Equal(t, tt.r.Severity.String(), got.Severity)
		})
	}
}
