package sealer

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
)

func TestShardJSONRoundTrip(t *testing.T) {
	k := mustKey(t, testToken, "w1")
	signed := validShard(t)
	require.NoError(t, Sign(k, &signed))
	unsigned := validShard(t)

	for name, s := range map[string]Shard{"signed": signed, "unsigned": unsigned} {
		t.Run(name, func(t *testing.T) {
			js, err := json.Marshal(s)
			require.NoError(t, err)
			var back Shard
			require.NoError(t, json.Unmarshal(js, &back))
			assert.True(t, s.Equal(back), "%v\n%v", s, back)
			assert.Equal(t, time.UTC, back.SealedAt.Location())
			assert.Equal(t, s.Signed(), back.Signed())
			if s.Signed() {
				assert.NoError(t, CheckSignature(k, &back), "a record that travelled still checks")
			}
		})
	}
}

func TestShardJSONWireForm(t *testing.T) {
	k := mustKey(t, testToken, "w1")
	s := validShard(t)
	require.NoError(t, Sign(k, &s))
	js, err := json.Marshal(s)
	require.NoError(t, err)
	var fields map[string]any
	require.NoError(t, json.Unmarshal(js, &fields))
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	assert.ElementsMatch(t, []string{"id", "device", "size", "digest", "chunk_size", "chunk_root",
		"sealed_at", "model_ref", "shard_index", "total_shards", "generation", "signature"}, names)
	assert.Equal(t, "2026-03-04T05:06:07.890123456Z", fields["sealed_at"])
	assert.Len(t, fields["signature"], 64)

	unsigned, err := json.Marshal(validShard(t))
	require.NoError(t, err)
	assert.NotContains(t, string(unsigned), "signature", "an unsigned record has no signature field")
}

// wire returns the JSON of a valid signed record with edit applied to its
// fields.
func wire(t *testing.T, edit func(map[string]any)) string {
	t.Helper()
	s := validShard(t)
	require.NoError(t, Sign(mustKey(t, testToken, "w1"), &s))
	js, err := json.Marshal(s)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(js, &m))
	edit(m)
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return string(out)
}

// unsignedWire is wire without the signature.
func unsignedWire(t *testing.T, edit func(map[string]any)) string {
	t.Helper()
	return wire(t, func(m map[string]any) {
		delete(m, "signature")
		edit(m)
	})
}

func TestShardJSONLeavesASignedRecordsFormToItsCheck(t *testing.T) {
	key := mustKey(t, testToken, "w1")
	for name, edit := range map[string]func(map[string]any){
		"bad shard ID":   func(m map[string]any) { m["id"] = "../etc/passwd" },
		"zero size":      func(m map[string]any) { m["size"] = 0 },
		"bad digest":     func(m map[string]any) { m["digest"] = "abc" },
		"bad chunk size": func(m map[string]any) { m["chunk_size"] = 1000 },
	} {
		var s Shard
		require.NoError(t, s.UnmarshalJSON([]byte(wire(t, edit))), "%s: a signed record decodes", name)
		assert.ErrorIs(t, CheckSignature(key, &s), messages.ErrSealVerificationFailed,
			"%s: altered into a malformed record, it fails its signature", name)
	}
}

func TestShardJSONRejects(t *testing.T) {
	valid := wire(t, func(map[string]any) {})
	tests := []struct {
		name     string
		js       string
		mentions string
	}{
		{"empty input", ``, "want a JSON object"},
		{"null", `null`, "want a JSON object"},
		{"array", `[]`, "want a JSON object"},
		{"string", `"x"`, "want a JSON object"},
		{"empty object", `{}`, `field "id" is missing`},
		{"unknown field", wire(t, func(m map[string]any) { m["address"] = 1234 }), `unknown field "address"`},
		{"name in another case", strings.Replace(valid, `"id"`, `"ID"`, 1), `unknown field "ID"`},
		{"repeated field", strings.Replace(valid, `{"chunk_root"`, `{"size":1,"chunk_root"`, 1) + ``, `"size" appears twice`},
		{"missing field", wire(t, func(m map[string]any) { delete(m, "model_ref") }), `"model_ref" is missing`},
		{"null field", wire(t, func(m map[string]any) { m["size"] = nil }), `"size" is null`},
		{"string for a number", wire(t, func(m map[string]any) { m["size"] = "5" }), `"size": want an integer`},
		{"fraction", wire(t, func(m map[string]any) { m["device"] = 1.5 }), `"device": want an integer`},
		{"number too big", strings.Replace(valid, `"size":80000`, `"size":`+strings.Repeat("9", 5000), 1), `"size": want an integer`},
		{"number for a string", wire(t, func(m map[string]any) { m["id"] = 7 }), `"id": want a string`},
		{"trailing data", valid + `{}`, "data after the JSON object"},
		{"truncated", valid[:len(valid)-1], "JSON ends early"},
		{"bad syntax inside", strings.Replace(valid, `"size":`, "\"size\":\xff", 1), "malformed JSON near byte"},
		{"signature uppercase", wire(t, func(m map[string]any) { m["signature"] = strings.ToUpper(m["signature"].(string)) }), "signature"},
		{"signature short", wire(t, func(m map[string]any) { m["signature"] = m["signature"].(string)[:62] }), "64 lowercase hex digits"},
		{"signature not hex", wire(t, func(m map[string]any) { m["signature"] = strings.Repeat("zz", 32) }), "64 lowercase hex digits"},
		{"signature empty", wire(t, func(m map[string]any) { m["signature"] = "" }), `"signature" is empty`},
		{"bad shard ID", unsignedWire(t, func(m map[string]any) { m["id"] = "../etc/passwd" }), "starts with '.'"},
		{"zero size", unsignedWire(t, func(m map[string]any) { m["size"] = 0 }), "want at least 1 byte"},
		{"bad digest", unsignedWire(t, func(m map[string]any) { m["digest"] = "abc" }), "digest"},
		{"bad chunk size", unsignedWire(t, func(m map[string]any) { m["chunk_size"] = 1000 }), "chunk size"},
		{"bad time", wire(t, func(m map[string]any) { m["sealed_at"] = "yesterday" }), "RFC 3339"},
		{"time before year 0 in UTC", wire(t, func(m map[string]any) { m["sealed_at"] = "0000-01-01T00:00:00+01:00" }), "RFC 3339"},
		{"time after year 9999 in UTC", wire(t, func(m map[string]any) { m["sealed_at"] = "9999-12-31T23:00:00-01:00" }), "RFC 3339"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := validShard(t)
			s := before
			err := s.UnmarshalJSON([]byte(tt.js))
			require.ErrorIs(t, err, messages.ErrInvalidInput)
			assert.Contains(t, err.Error(), tt.mentions)
			assert.Less(t, len(err.Error()), 400, "errors quote no more than a prefix")
			assert.True(t, before.Equal(s), "a failed decode leaves the record unchanged")
		})
	}
}

func TestShardJSONAcceptsOtherZones(t *testing.T) {
	js := wire(t, func(m map[string]any) {
		m["sealed_at"] = "2026-03-04T07:06:07.890123456+02:00"
		delete(m, "signature")
	})
	var s Shard
	require.NoError(t, json.Unmarshal([]byte(js), &s))
	assert.Equal(t, time.UTC, s.SealedAt.Location())
	assert.True(t, s.Equal(validShard(t)))
}

func TestShardJSONAlteredRecordFailsCheck(t *testing.T) {
	k := mustKey(t, testToken, "w1")
	js := wire(t, func(m map[string]any) { m["device"] = 0 })
	var s Shard
	require.NoError(t, json.Unmarshal([]byte(js), &s), "it is well formed")
	assert.ErrorIs(t, CheckSignature(k, &s), messages.ErrSealVerificationFailed)
}

func TestShardJSONInsideAnotherDocument(t *testing.T) {
	k := mustKey(t, testToken, "w1")
	s := validShard(t)
	require.NoError(t, Sign(k, &s))
	type envelope struct {
		Shard Shard  `json:"shard"`
		Note  string `json:"note"`
	}
	js, err := json.Marshal(envelope{Shard: s, Note: "n"})
	require.NoError(t, err)
	var back envelope
	require.NoError(t, json.Unmarshal(js, &back))
	assert.True(t, s.Equal(back.Shard))

	err = json.Unmarshal([]byte(`{"shard":{"id":"x"},"note":"n"}`), &back)
	assert.ErrorIs(t, err, messages.ErrInvalidInput)
}

func TestShardMarshalJSONOutOfRangeTime(t *testing.T) {
	s := validShard(t)
	s.SealedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err := json.Marshal(s)
	assert.ErrorIs(t, err, messages.ErrInvalidInput)
}
