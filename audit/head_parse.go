package audit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadHead means a head, as given on a command line or in a file, could
// not be read.
var ErrBadHead = errors.New("not an audit head")

// ParseHead reads a head written as SEQ:MAC: a decimal seq from 1, a
// colon, and the 64 hex digits of that record's mac. The mac is kept in
// lower case. The error wraps ErrBadHead and says what is wrong.
func ParseHead(s string) (Head, error) {
	seqText, macText, ok := strings.Cut(s, ":")
	if !ok {
		return Head{}, fmt.Errorf("%w: %q is not SEQ:MAC (a seq, a colon and 64 hex digits)", ErrBadHead, clip(s))
	}
	seq, err := parseSeq(seqText)
	if err != nil {
		return Head{}, fmt.Errorf("%w: %q: %v", ErrBadHead, clip(s), err)
	}
	mac, err := parseMAC(macText)
	if err != nil {
		return Head{}, fmt.Errorf("%w: %q: %v", ErrBadHead, clip(s), err)
	}
	return Head{Seq: seq, MAC: mac}, nil
}

// ParseHeadLine reads a head from one line as it was shipped off the host:
// the worker's log line (HeadLogMessage, as JSON or as slog's key=value
// text, after any prefix a log pipeline adds, such as journald's), the JSON
// that GET /audit/head answers, or SEQ:MAC. A JSON or text log line of
// another message is not a head. The error wraps ErrBadHead.
func ParseHeadLine(line string) (Head, error) {
	line = strings.TrimSpace(line)
	brace, msg := strings.IndexByte(line, '{'), strings.Index(line, "msg=")
	switch {
	case msg >= 0 && (brace < 0 || msg < brace): // a text line, whose values may hold a brace
		return parseHeadText(line[msg:])
	case brace >= 0:
		return parseHeadJSON(line[brace:])
	}
	return ParseHead(line)
}

// parseHeadJSON reads a JSON head: a log line (msg HeadLogMessage) or an
// /audit/head answer (no msg).
func parseHeadJSON(s string) (Head, error) {
	var v struct {
		Msg      *string         `json:"msg"`
		WorkerID string          `json:"worker_id"`
		Seq      json.RawMessage `json:"seq"`
		MAC      string          `json:"mac"`
	}
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return Head{}, fmt.Errorf("%w: not a JSON object: %v", ErrBadHead, err)
	}
	if v.Msg != nil && *v.Msg != HeadLogMessage {
		return Head{}, fmt.Errorf("%w: a log line of message %q, not %q", ErrBadHead, clip(*v.Msg), HeadLogMessage)
	}
	seq, err := parseSeq(string(bytes.Trim(v.Seq, `"`)))
	if err != nil {
		return Head{}, fmt.Errorf("%w: seq: %v", ErrBadHead, err)
	}
	mac, err := parseMAC(v.MAC)
	if err != nil {
		return Head{}, fmt.Errorf("%w: mac: %v", ErrBadHead, err)
	}
	return Head{WorkerID: v.WorkerID, Seq: seq, MAC: mac}, nil
}

// parseHeadText reads a head from slog's text form, from its msg on:
// msg="audit head" worker_id=w1 seq=7 mac=... record_time=...
func parseHeadText(s string) (Head, error) {
	attrs, err := parseKeyValues(s)
	if err != nil {
		return Head{}, fmt.Errorf("%w: %v", ErrBadHead, err)
	}
	if attrs["msg"] != HeadLogMessage {
		return Head{}, fmt.Errorf("%w: a log line of message %q, not %q", ErrBadHead, clip(attrs["msg"]), HeadLogMessage)
	}
	seq, err := parseSeq(attrs["seq"])
	if err != nil {
		return Head{}, fmt.Errorf("%w: seq: %v", ErrBadHead, err)
	}
	mac, err := parseMAC(attrs["mac"])
	if err != nil {
		return Head{}, fmt.Errorf("%w: mac: %v", ErrBadHead, err)
	}
	return Head{WorkerID: attrs["worker_id"], Seq: seq, MAC: mac}, nil
}

// parseKeyValues splits key=value pairs separated by spaces; a value may be
// a Go-quoted string, as slog quotes values with spaces or quotes in them.
// A key that comes again keeps its first value.
func parseKeyValues(s string) (map[string]string, error) {
	out := map[string]string{}
	for s = strings.TrimLeft(s, " "); s != ""; s = strings.TrimLeft(s, " ") {
		key, rest, ok := strings.Cut(s, "=")
		if !ok || key == "" || strings.ContainsAny(key, ` "`) {
			return nil, fmt.Errorf("%q is not key=value", clip(s))
		}
		var value string
		if strings.HasPrefix(rest, `"`) {
			end := quotedEnd(rest)
			if end < 0 {
				return nil, fmt.Errorf("the value of %s has no closing quote", clip(key))
			}
			v, err := strconv.Unquote(rest[:end])
			if err != nil {
				return nil, fmt.Errorf("the value of %s is not a quoted string", clip(key))
			}
			value, s = v, rest[end:]
		} else {
			value, s, _ = strings.Cut(rest, " ")
		}
		if _, seen := out[key]; !seen {
			out[key] = value
		}
	}
	return out, nil
}

// quotedEnd is the length of the quoted string s starts with, closing quote
// included, or -1 if it does not end.
func quotedEnd(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// parseSeq reads a seq: decimal digits only, from 1.
func parseSeq(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("no seq")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("seq %q is not a decimal number", clip(s))
		}
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("seq %q is out of range", clip(s))
	}
	if seq == 0 {
		return 0, errors.New("seq 0: records count from 1")
	}
	return seq, nil
}

// parseMAC reads a mac: exactly 64 hex digits, returned in lower case.
func parseMAC(s string) (string, error) {
	if len(s) != macHexLen {
		return "", fmt.Errorf("mac is %d characters, want %d hex digits", len(s), macHexLen)
	}
	var b [macHexLen / 2]byte
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return "", errors.New("mac is not hex")
	}
	return hex.EncodeToString(b[:]), nil
}

// clip shortens s for an error message.
func clip(s string) string {
	const most = 80
	if len(s) > most {
		return s[:most] + "..."
	}
	return s
}
