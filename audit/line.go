package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"strconv"
	"time"
)

// A log line is one JSON object followed by "\n", with its keys in this
// order:
//
//	{"seq":7,"time":"2026-01-02T03:04:05.000000006Z","worker_id":"w1",
//	 "event":"VramSealed","severity":"info","fields":{...},"mac":"<64 hex>"}
//
// The body of a line is the same object without its mac: the line up to
// `,"mac":` followed by "}". The mac is HMAC-SHA256, under the audit key, of
// the previous line's mac (32 raw bytes; the genesis value for seq 1)
// followed by the body.

// TimeLayout is how a line's time is written: RFC 3339 in UTC with all nine
// digits of nanoseconds, so every line's time has the same width.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// MaxLineBytes bounds one line, mac and newline included. A record whose
// line would be longer is refused; a longer line in a file is not ours.
const MaxLineBytes = 64 << 10

// macSuffix is the fixed shape of a line's end: `,"mac":"` + 64 hex + `"}`.
const (
	macPrefix    = `,"mac":"`
	macHexLen    = 2 * sha256.Size
	macSuffixLen = len(macPrefix) + macHexLen + len(`"}`)
)

// maxHeadLen is the longest `{"seq":N,"time":"T",` can be.
const maxHeadLen = len(`{"seq":18446744073709551615,"time":"`) + len(TimeLayout) + len(`",`)

// chain computes macs over consecutive lines.
type chain struct {
	mac  hash.Hash
	prev [sha256.Size]byte
	out  []byte // room for a mac, so that summing one allocates nothing
}

func newChain(k *Key) *chain {
	return &chain{mac: k.NewMAC(), prev: genesis(k), out: make([]byte, 0, sha256.Size)}
}

// sum is the mac of body chained from prev.
func (c *chain) sum(prev *[sha256.Size]byte, body []byte) [sha256.Size]byte {
	c.mac.Reset()
	c.mac.Write(prev[:])
	c.mac.Write(body)
	return [sha256.Size]byte(c.mac.Sum(c.out[:0]))
}

// appendTime appends t as a line's time says it (TimeLayout, in UTC).
func appendTime(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, TimeLayout)
}

// appendLine appends the complete line for seq, written at the time stamp
// (from appendTime), and advances the chain to it.
func (c *chain) appendLine(dst []byte, seq uint64, stamp []byte, tail encodedTail) []byte {
	start := len(dst)
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = append(dst, stamp...)
	dst = append(dst, `",`...)
	dst = append(dst, tail...)
	dst = append(dst, '}')
	c.prev = c.sum(&c.prev, dst[start:])
	dst = dst[:len(dst)-1]
	dst = append(dst, macPrefix...)
	dst = hex.AppendEncode(dst, c.prev[:])
	return append(dst, "\"}\n"...)
}

// parsedLine is what a line says about itself.
type parsedLine struct {
	Seq      uint64          `json:"seq"`
	WorkerID string          `json:"worker_id"`
	Time     json.RawMessage `json:"time"` // any JSON value: only an intact line's is read
	body     []byte
	mac      [sha256.Size]byte
	hasMAC   bool // the line ended in a well-formed mac, whatever its body
}

// parseLine splits a line (without its newline) into body and mac and reads
// the body's header. It says why when the line is not one of ours; the mac
// is kept even then, if it could be read.
func parseLine(line []byte) (parsedLine, error) {
	var p parsedLine
	cut := len(line) - macSuffixLen
	if cut < 1 || !bytes.HasPrefix(line[cut:], []byte(macPrefix)) || !bytes.HasSuffix(line, []byte(`"}`)) {
		return p, errors.New("no mac at the end of the line")
	}
	if _, err := hex.Decode(p.mac[:], line[cut+len(macPrefix):len(line)-2]); err != nil {
		return p, errors.New("mac is not hex")
	}
	p.hasMAC = true
	p.body = append(line[:cut:cut], '}')
	if err := json.Unmarshal(p.body, &p); err != nil {
		return p, errors.New("not a JSON record")
	}
	if p.Seq == 0 {
		return p, errors.New("no seq")
	}
	return p, nil
}

// follows reports whether p's mac chains from prev.
func (c *chain) follows(prev *[sha256.Size]byte, p *parsedLine) bool {
	want := c.sum(prev, p.body)
	return hmac.Equal(want[:], p.mac[:])
}
