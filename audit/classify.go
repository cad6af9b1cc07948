package audit

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// classifier says how the first bad line of a log came to be there, from the
// lines around it. It reads on from the bad line as far as it must.
type classifier struct {
	chain    *chain
	key      *Key
	prev     [sha256.Size]byte // mac of the last intact record, or genesis
	expected uint64            // the seq the bad line should have had
	lines    *lineReader       // positioned just after the bad line
}

// belongs reports whether q is a record of this log that follows prev with
// the given seq.
func (cl *classifier) belongs(q parsedLine, seq uint64, prev *[sha256.Size]byte) bool {
	return q.Seq == seq && q.WorkerID == cl.key.WorkerID() && cl.chain.follows(prev, &q)
}

// nextLine reads the next line; ok is false at the end of the log or when
// the line is not a complete record.
func (cl *classifier) nextLine() (q parsedLine, ok bool, err error) {
	ln, err := cl.lines.next()
	if errors.Is(err, io.EOF) {
		return q, false, nil
	}
	if err != nil {
		return q, false, err
	}
	q, perr := ln.parse()
	return q, ln.complete && perr == nil, nil
}

// classify names the reason for bad line p (perr says why it did not parse,
// if it did not) and describes it.
func (cl *classifier) classify(p parsedLine, perr error) (reason, detail string, err error) {
	e := cl.expected
	q, qok, err := cl.nextLine()
	if err != nil {
		return "", "", err
	}
	// The next line chains from this one's mac: it stands where it was
	// written and only its contents changed.
	if qok && p.hasMAC && cl.belongs(q, e+1, &p.mac) {
		return ReasonEdited, cl.editDetail(p, perr), nil
	}
	// The next line continues the chain as if this one were not there.
	if qok && cl.belongs(q, e, &cl.prev) {
		if perr == nil && p.Seq > e {
			moved, err := cl.chainsLater(p, q)
			if err != nil {
				return "", "", err
			}
			if moved {
				return ReasonReordered, fmt.Sprintf("seq %d comes before seq %d", p.Seq, e), nil
			}
		}
		return ReasonInserted, fmt.Sprintf("the line is not part of the chain; seq %d follows it", e), nil
	}
	switch {
	case perr != nil || p.WorkerID != cl.key.WorkerID() || p.Seq == e:
		return ReasonEdited, cl.editDetail(p, perr), nil
	case p.Seq < e:
		return ReasonInserted, fmt.Sprintf("seq %d repeats an earlier record", p.Seq), nil
	}
	// p's seq skips ahead. If a record it skips over comes later, the lines
	// were reordered; if none does, they were deleted.
	skipped := func(seq uint64) bool { return seq >= e && seq < p.Seq }
	comesLater := qok && skipped(q.Seq)
	for !comesLater {
		r, more, err := cl.nextRecord()
		if err != nil {
			return "", "", err
		}
		if !more {
			break
		}
		comesLater = skipped(r.Seq)
	}
	if comesLater {
		return ReasonReordered, fmt.Sprintf("seq %d comes before seq %d", p.Seq, e), nil
	}
	if p.Seq == e+1 {
		return ReasonMissing, fmt.Sprintf("seq %d is missing", e), nil
	}
	return ReasonMissing, fmt.Sprintf("seq %d to %d are missing", e, p.Seq-1), nil
}

// nextRecord reads the next line that parses, skipping those that do not;
// more is false at the end of the log.
func (cl *classifier) nextRecord() (q parsedLine, more bool, err error) {
	for {
		ln, err := cl.lines.next()
		if errors.Is(err, io.EOF) {
			return q, false, nil
		}
		if err != nil {
			return q, false, err
		}
		if q, perr := ln.parse(); perr == nil {
			return q, true, nil
		}
	}
}

// chainsLater reports whether p, which stands before q, is the genuine
// record that belongs after the chain q starts: the chain is followed from q
// up to p's seq.
func (cl *classifier) chainsLater(p, q parsedLine) (bool, error) {
	head, seq := q.mac, q.Seq
	for seq+1 < p.Seq {
		r, ok, err := cl.nextLine()
		if err != nil || !ok || !cl.belongs(r, seq+1, &head) {
			return false, err
		}
		head, seq = r.mac, r.Seq
	}
	return cl.belongs(p, p.Seq, &head), nil
}

// editDetail says what is wrong with an edited line.
func (cl *classifier) editDetail(p parsedLine, perr error) string {
	switch {
	case perr != nil:
		return perr.Error()
	case p.WorkerID != cl.key.WorkerID():
		return fmt.Sprintf("worker_id %q, but the key is for worker %q", p.WorkerID, cl.key.WorkerID())
	case p.Seq != cl.expected:
		return fmt.Sprintf("seq %d where seq %d belongs", p.Seq, cl.expected)
	default:
		return "mac does not match (the line was edited, or this is the wrong key)"
	}
}
