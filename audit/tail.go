package audit

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/vramseal/vramseal/messages"
)

// encodedTail is the part of a line a caller can encode before the writer
// gives it a seq and time: from `"worker_id":` to the end of the fields.
type encodedTail []byte

// tailCap is the room a tail starts with; a VramSealed record needs about
// 400 bytes.
const tailCap = 512

// tailBufs recycles the buffers tails are encoded into: the writer gives
// each back once it has copied the tail into its line.
var tailBufs = sync.Pool{New: func() any { return new([tailCap]byte) }}

// recycle gives t's buffer back for another tail, if it came from tailBufs;
// t must not be used afterwards.
func (t encodedTail) recycle() {
	if cap(t) == tailCap {
		tailBufs.Put((*[tailCap]byte)(t[:tailCap]))
	}
}

// encodeTail validates r and encodes everything of its line that does not
// depend on its place in the log. It runs in the caller's goroutine, so
// that the one writer only stamps, chains and appends.
//
// It writes exactly what json.Marshal writes for these four keys in this
// order, with the keys of fields sorted, but without reflection for the
// values records hold (strings, integers, booleans); other values go
// through json.Marshal.
func encodeTail(workerID string, r Record) (encodedTail, error) {
	if r.Event == "" {
		return nil, fmt.Errorf("%w: audit record without an event", messages.ErrInvalidInput)
	}
	if _, ok := severityNames[r.Severity]; !ok {
		return nil, fmt.Errorf("%w: audit record %s: unknown severity %d", messages.ErrInvalidInput, r.Event, int(r.Severity))
	}
	b := tailBufs.Get().(*[tailCap]byte)[:0]
	b = append(b, `"worker_id":`...)
	b = appendJSONString(b, workerID)
	b = append(b, `,"event":`...)
	b = appendJSONString(b, r.Event)
	b = append(b, `,"severity":`...)
	b = appendJSONString(b, r.Severity.String())
	b = append(b, `,"fields":`...)
	b, err := appendFields(b, r.Fields)
	if err != nil {
		return nil, fmt.Errorf("%w: audit record %s: %v", messages.ErrInvalidInput, r.Event, err)
	}
	if len(b)+len("{}")+maxHeadLen+macSuffixLen > MaxLineBytes {
		return nil, fmt.Errorf("%w: audit record %s is longer than %d bytes", messages.ErrInvalidInput, r.Event, MaxLineBytes)
	}
	return b, nil
}

// appendFields appends fields as a JSON object with its keys sorted; nil
// is the empty object.
func appendFields(b []byte, fields map[string]any) ([]byte, error) {
	var room [16]field
	sorted := room[:0]
	for k, v := range fields {
		sorted = append(sorted, field{k, v})
	}
	sortFields(sorted)
	b = append(b, '{')
	for i, f := range sorted {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, f.key)
		b = append(b, ':')
		var err error
		if b, err = appendJSONValue(b, f.value); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// field is one entry of a record's fields.
type field struct {
	key   string
	value any
}

// sortFields sorts fields by key. A record has a dozen fields or so, which
// an insertion sort comparing the keys directly orders faster than a
// generic sort calling back for each comparison.
func sortFields(fields []field) {
	if len(fields) > 16 {
		slices.SortFunc(fields, func(a, b field) int { return strings.Compare(a.key, b.key) })
		return
	}
	for i := 1; i < len(fields); i++ {
		for j := i; j > 0 && fields[j].key < fields[j-1].key; j-- {
			fields[j], fields[j-1] = fields[j-1], fields[j]
		}
	}
}

// appendJSONValue appends v as json.Marshal writes it.
func appendJSONValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint64:
		return strconv.AppendUint(b, v, 10), nil
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, enc...), nil
}

// appendJSONString appends s as a JSON string the way json.Marshal does.
// Printable ASCII that neither JSON nor json.Marshal's HTML escaping
// touches is copied as it is; any other string goes through json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !jsonPlain[s[i]] {
			enc, _ := json.Marshal(s) // a string always encodes
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// jsonPlain marks the bytes appendJSONString copies as they are: printable
// ASCII but for '"', '\' and the '<', '>', '&' that json.Marshal escapes.
var jsonPlain = func() (plain [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		plain[c] = true
	}
	for _, c := range `"\<>&` {
		plain[c] = false
	}
	return plain
}()
