package audit

import (
	"fmt"
	"io"

	"github.com/vramseal/vramseal/messages"
)

// Reasons Verify gives for the first bad line of a log.
const (
	// ReasonEdited: the line's contents changed (its mac does not match, or
	// it is not a record at all), or the key is wrong.
	ReasonEdited = "edited"
	// ReasonMissing: the line's seq skips ahead; lines were deleted.
	ReasonMissing = "missing"
	// ReasonReordered: a genuine record stands before records that precede it.
	ReasonReordered = "reordered"
	// ReasonInserted: the line repeats an earlier record or is extra; the
	// chain goes on without it.
	ReasonInserted = "inserted"
	// ReasonTruncated: the last line was cut short (it has no newline), as a
	// crash mid-write leaves it.
	ReasonTruncated = "truncated"
)

// Report is the outcome of checking a log.
type Report struct {
	// Records is the number of intact records before the first bad line.
	Records int
	// FirstBad is the line number (from 1) of the first bad line; 0 if the
	// log is intact.
	FirstBad int
	// Reason is one of the Reason constants; empty if the log is intact.
	Reason string
	// Detail says what was seen at FirstBad, for people.
	Detail string
	// WorkerID is the worker whose key checked the log.
	WorkerID string
	// Head is the hex mac of the last intact record. Deleting records from
	// the end of a log leaves an intact log; comparing Head and Records
	// with copies kept elsewhere detects it.
	Head string
}

// Intact reports whether every line of the log checked out.
func (r Report) Intact() bool { return r.FirstBad == 0 }

// Verify checks a whole log with the worker's audit key: every line must be
// a record of that worker, with seq 1, 2, ... and each mac chained from the
// one before. Empty lines at the very end, as an editor or "echo >>" leaves
// them, are not lines of the log. For a log that is not intact it returns
// the report, naming the first bad line and how it came to be bad, and an
// error wrapping messages.ErrIntegrityViolation. Other errors mean the key is
// unusable or r could not be read.
func Verify(r io.Reader, key *Key) (Report, error) {
	if err := usableKey(key); err != nil {
		return Report{}, err
	}
	res, err := scan(withoutBlankTail(r), key, nil)
	if err != nil {
		return res.Report, fmt.Errorf("audit: read log: %w", err)
	}
	if !res.Intact() {
		return res.Report, fmt.Errorf("%w: audit log line %d: %s: %s", messages.ErrIntegrityViolation, res.FirstBad, res.Reason, res.Detail)
	}
	return res.Report, nil
}

// blankTailTrimmer passes a log through but for the empty lines at its very
// end; an empty line that records follow is passed on, and is bad.
type blankTailTrimmer struct {
	r       io.Reader
	buf     []byte
	out     []byte // ready to hand out, from pos
	pos     int
	held    int  // newlines held back: empty lines that may be the tail
	afterNL bool // the last byte passed on was a newline
	err     error
}

// withoutBlankTail returns r without the empty lines at its end.
func withoutBlankTail(r io.Reader) io.Reader {
	return &blankTailTrimmer{r: r, buf: make([]byte, 64<<10)}
}

// Read hands out the log, holding back newlines that follow a newline until
// something other than a newline comes; at the end it drops them.
func (t *blankTailTrimmer) Read(p []byte) (int, error) {
	for t.pos == len(t.out) {
		if t.err != nil {
			return 0, t.err
		}
		t.out, t.pos = t.out[:0], 0
		n, err := t.r.Read(t.buf)
		for _, b := range t.buf[:n] {
			if b == '\n' && t.afterNL {
				t.held++
				continue
			}
			for ; t.held > 0; t.held-- {
				t.out = append(t.out, '\n')
			}
			t.out = append(t.out, b)
			t.afterNL = b == '\n'
		}
		t.err = err
	}
	n := copy(p, t.out[t.pos:])
	t.pos += n
	return n, nil
}
