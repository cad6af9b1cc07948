package audit

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
)

// marshalledTail is the tail as json.Marshal writes it: the reference
// encodeTail must match byte for byte, since the mac covers these bytes.
func marshalledTail(t testing.TB, workerID string, r Record) []byte {
	t.Helper()
	fields := r.Fields
	if fields == nil {
		fields = map[string]any{}
	}
	b, err := json.Marshal(struct {
		WorkerID string         `json:"worker_id"`
		Event    string         `json:"event"`
		Severity Severity       `json:"severity"`
		Fields   map[string]any `json:"fields"`
	}{workerID, r.Event, r.Severity, fields})
	require.NoError(t, err)
	return b[1 : len(b)-1]
}

// shardID is a named string type, as callers' own types are.
type shardID string

func TestEncodeTailWritesWhatJSONMarshalWrites(t *testing.T) {
	tests := []struct {
		name   string
		fields map[string]any
	}{
		{"nil fields", nil},
		{"empty fields", map[string]any{}},
		{"a sealed shard", map[string]any{
			"shard_id": "layer-0", "device": 1, "size": int64(4096), "digest": strings.Repeat("ab", 32),
			"chunk_size": int64(4 << 20), "chunk_root": strings.Repeat("cd", 32), "model_ref": "", "shard_index": 0, "total_shards": 0,
		}},
		{"keys in byte order", map[string]any{"b": 1, "B": 2, "a": 3, "_": 4, "aa": 5, "é": 6, "": 7}},
		{"every integer kind", map[string]any{
			"i": math.MinInt, "i8": int8(-8), "i16": int16(-16), "i32": int32(math.MinInt32), "i64": int64(math.MinInt64),
			"u": uint(math.MaxUint), "u8": uint8(8), "u16": uint16(16), "u32": uint32(math.MaxUint32), "u64": uint64(math.MaxUint64),
		}},
		{"floats", map[string]any{"f": 1.5, "small": 1e-7, "big": 1e21, "f32": float32(0.1), "zero": 0.0, "neg": -2.25e-300}},
		{"booleans and null", map[string]any{"t": true, "f": false, "n": nil}},
		{"strings to escape", map[string]any{
			"quote": `a"b`, "backslash": `a\b`, "controls": "\x00\x01\b\f\n\r\t\x1f\x7f", "html": "<script>&</script>",
			"unicode": "ä €  \u2028\u2029 😀", "invalid utf-8": "a\xffb\xc3", "key \"<&>\" \n": "v",
		}},
		{"values of other types", map[string]any{
			"named": shardID("s1"), "severity": SeverityCritical, "time": time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
			"bytes": []byte("raw"), "list": []any{1, "two", nil}, "nested": map[string]any{"z": 1, "a": []int{2}},
			"duration": 3 * time.Second, "struct": struct{ A int }{1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Record{Event: EventVramSealed, Severity: SeverityInfo, Fields: tt.fields}
			got, err := encodeTail("w1", r)
			require.NoError(t, err)
			assert.Equal(t, string(marshalledTail(t, "w1", r)), string(got))
		})
	}
}

func TestEncodeTailMatchesJSONMarshalOnRandomRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("aZ09_-. \"\\/<>&\n\t\x00\x7fé€\u2028😀\ufffd")
	randString := func() string {
		var sb strings.Builder
		for range rng.IntN(12) {
			if rng.IntN(20) == 0 {
				sb.WriteByte(byte(0x80 + rng.IntN(0x80))) // a stray byte: invalid UTF-8
				continue
			}
			sb.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		return sb.String()
	}
	values := []func() any{
		func() any { return randString() },
		func() any { return rng.Int() - rng.Int() },
		func() any { return rng.Int64() },
		func() any { return rng.Uint64() },
		func() any { return int32(rng.Uint32()) },
		func() any { return rng.Uint32() },
		func() any { return rng.IntN(2) == 0 },
		func() any { return nil },
		func() any { return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(60)-30)) },
		func() any { return shardID(randString()) },
	}
	workerIDs := []string{"w1", "worker-<1>", "wörker"}
	for i := range 2000 {
		fields := map[string]any{}
		for range rng.IntN(12) {
			fields[randString()] = values[rng.IntN(len(values))]()
		}
		r := Record{Event: randString() + "x", Severity: Severity(1 + rng.IntN(3)), Fields: fields}
		workerID := workerIDs[i%len(workerIDs)]
		got, err := encodeTail(workerID, r)
		require.NoError(t, err, "record %v", r)
		require.Equal(t, string(marshalledTail(t, workerID, r)), string(got), "record %v", r)
	}
}

func TestEncodeTailRefusesInvalidRecords(t *testing.T) {
	tests := []struct {
		name string
		r    Record
	}{
		{"no event", Record{Severity: SeverityInfo}},
		{"no severity", Record{Event: EventVramSealed}},
		{"unknown severity", Record{Event: EventVramSealed, Severity: Severity(7)}},
		{"field that is not JSON", Record{Event: EventVramSealed, Severity: SeverityInfo, Fields: map[string]any{"c": make(chan int)}}},
		{"not-a-number field", Record{Event: EventVramSealed, Severity: SeverityInfo, Fields: map[string]any{"f": math.NaN()}}},
		{"too long", Record{Event: EventVramSealed, Severity: SeverityInfo, Fields: map[string]any{"x": strings.Repeat("a", MaxLineBytes)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tail, err := encodeTail("w1", tt.r)
			assert.ErrorIs(t, err, messages.ErrInvalidInput)
			assert.Nil(t, tail)
		})
	}
}

func FuzzEncodeTail(f *testing.F) {
	f.Add("w1", "VramSealed", "shard_id", "layer-0", int64(4096))
	f.Add("w<1>", "Odd\"Event\n", "k\"", "v\\\n\u2028", int64(-1))
	f.Add("w1", "E", "", "a\xffb", int64(0))
	f.Fuzz(func(t *testing.T, workerID, event, key, value string, n int64) {
		if event == "" {
			t.Skip("an event is required")
		}
		r := Record{Event: event, Severity: SeverityWarning, Fields: map[string]any{key: value, key + "#n": n, "z": true}}
		got, err := encodeTail(workerID, r)
		if err != nil {
			require.ErrorIs(t, err, messages.ErrInvalidInput)
			require.Greater(t, len(marshalledTail(t, workerID, r))+maxHeadLen+macSuffixLen, MaxLineBytes-2, "only an over-long record is refused")
			return
		}
		require.Equal(t, string(marshalledTail(t, workerID, r)), string(got))
	})
}
