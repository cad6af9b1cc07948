package audit

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// lineReader reads a log one line at a time, bounded by MaxLineBytes.
type lineReader struct {
	r      *bufio.Reader
	number int // lines read so far
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, MaxLineBytes)}
}

// rawLine is one line of a log file.
type rawLine struct {
	text     []byte // without the newline; valid until the next read
	size     int64  // bytes in the file, newline included
	complete bool   // it ended in a newline
	tooLong  bool   // longer than MaxLineBytes; text is empty
}

// next reads the next line; io.EOF means there is none.
func (lr *lineReader) next() (rawLine, error) {
	text, err := lr.r.ReadSlice('\n')
	ln := rawLine{text: text, size: int64(len(text))}
	for errors.Is(err, bufio.ErrBufferFull) {
		ln.tooLong, ln.text = true, nil
		text, err = lr.r.ReadSlice('\n')
		ln.size += int64(len(text))
	}
	switch {
	case err == nil:
		ln.complete = true
		if !ln.tooLong {
			ln.text = ln.text[:len(ln.text)-1]
		}
	case errors.Is(err, io.EOF):
		if ln.size == 0 {
			return ln, io.EOF
		}
	default:
		return ln, err
	}
	lr.number++
	return ln, nil
}

// parse reads ln as a record line.
func (ln rawLine) parse() (parsedLine, error) {
	if ln.tooLong {
		return parsedLine{}, fmt.Errorf("line longer than %d bytes", MaxLineBytes)
	}
	return parseLine(ln.text)
}

// scanResult is a Report plus what a writer needs to continue the log.
type scanResult struct {
	Report
	lastSeq   uint64
	head      [sha256.Size]byte // mac of the last intact record, or genesis
	goodBytes int64             // length of the intact prefix of the file
	lastTime  []byte            // time of the last intact record, as its line says it (JSON)
	// unterminated is true when the last record is intact but for its
	// newline: it is kept, and a writer ends it before appending.
	unterminated bool
}

// scan checks a log from its first line and stops at the first bad one,
// classifying it. onRecord, if not nil, is shown each intact record's seq
// and mac. An error is returned only when r cannot be read.
func scan(r io.Reader, k *Key, onRecord func(seq uint64, mac [sha256.Size]byte)) (scanResult, error) {
	c := newChain(k)
	res := scanResult{Report: Report{WorkerID: k.WorkerID()}, head: c.prev}
	lr := newLineReader(r)
	for {
		ln, err := lr.next()
		if errors.Is(err, io.EOF) {
			return res, nil
		}
		if err != nil {
			return res, err
		}
		p, perr := ln.parse()
		// A last line without its newline is still the record it was if
		// its mac verifies: only a line whose mac fails is torn.
		if perr == nil && p.Seq == res.lastSeq+1 && p.WorkerID == k.WorkerID() && c.follows(&res.head, &p) {
			res.unterminated = !ln.complete
			res.Records++
			res.lastSeq, res.head = p.Seq, p.mac
			res.goodBytes += ln.size
			res.Head = hex.EncodeToString(p.mac[:])
			res.lastTime = p.Time
			if onRecord != nil {
				onRecord(p.Seq, p.mac)
			}
			continue
		}
		res.FirstBad = lr.number
		if !ln.complete {
			res.Reason, res.Detail = ReasonTruncated, "the last line is cut short"
			return res, nil
		}
		cl := classifier{chain: c, key: k, prev: res.head, expected: res.lastSeq + 1, lines: lr}
		res.Reason, res.Detail, err = cl.classify(p, perr)
		return res, err
	}
}
