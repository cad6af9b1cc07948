package audit

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/vramseal/vramseal/messages"
)

// ErrHeadMismatch means an intact log does not hold a head published
// earlier: it was cut before it (truncated), or its record at that seq has
// another mac (diverged).
var ErrHeadMismatch = errors.New("audit log does not hold a published head")

// Why a log does not hold a published head.
const (
	// HeadTruncated: the log ends before the head's seq.
	HeadTruncated = "truncated"
	// HeadDiverged: the log's record at the head's seq has another mac.
	HeadDiverged = "diverged"
)

// HeadReport says how a log stands against heads published from it.
type HeadReport struct {
	// Checked is the number of distinct heads checked.
	Checked int
	// Matched is the number of them the log holds.
	Matched int
	// LastMatched is the head of highest seq the log holds below the
	// first that it does not (all of them if it holds every one); nil if
	// it holds none.
	LastMatched *Head
	// Problem is HeadTruncated or HeadDiverged for the first head, in seq
	// order, that the log does not hold; empty if it holds every one.
	Problem string
	// Missed is that head.
	Missed *Head
	// Detail says what was found there, for people.
	Detail string
}

// VerifyHeads is Verify, and then checks that the log holds every head in
// heads: its record at each head's seq has the head's mac. A log that is
// not intact returns Verify's report and error; an intact log that does not
// hold a head returns an error wrapping ErrHeadMismatch, with the report
// naming the first head it lacks and the last it holds. A head of another
// worker than the key's, or whose mac is not 64 hex digits, is an error
// wrapping messages.ErrInvalidInput.
func VerifyHeads(r io.Reader, key *Key, heads []Head) (Report, HeadReport, error) {
	if err := usableKey(key); err != nil {
		return Report{}, HeadReport{}, err
	}
	want := map[uint64][sha256.Size]byte{}
	var sorted []Head
	for _, h := range heads {
		if h.WorkerID != "" && h.WorkerID != key.WorkerID() {
			return Report{}, HeadReport{}, fmt.Errorf("%w: head seq %d is of worker %q, and the log's key is for worker %q", messages.ErrInvalidInput, h.Seq, h.WorkerID, key.WorkerID())
		}
		var mac [sha256.Size]byte
		if n, err := hex.Decode(mac[:], []byte(h.MAC)); err != nil || n != sha256.Size || len(h.MAC) != macHexLen {
			return Report{}, HeadReport{}, fmt.Errorf("%w: head seq %d: mac is not 64 hex digits", messages.ErrInvalidInput, h.Seq)
		}
		if prev, ok := want[h.Seq]; ok {
			if !hmac.Equal(prev[:], mac[:]) {
				return Report{}, HeadReport{}, fmt.Errorf("%w: two heads of seq %d with different macs: they cannot both be this log's", messages.ErrInvalidInput, h.Seq)
			}
			continue
		}
		want[h.Seq] = mac
		sorted = append(sorted, h)
	}
	slices.SortFunc(sorted, func(a, b Head) int { return cmp.Compare(a.Seq, b.Seq) })
	found := map[uint64][sha256.Size]byte{}
	res, err := scan(withoutBlankTail(r), key, func(seq uint64, mac [sha256.Size]byte) {
		if _, ok := want[seq]; ok {
			found[seq] = mac
		}
	})
	if err != nil {
		return res.Report, HeadReport{}, fmt.Errorf("audit: read log: %w", err)
	}
	if !res.Intact() {
		return res.Report, HeadReport{}, fmt.Errorf("%w: audit log line %d: %s: %s", messages.ErrIntegrityViolation, res.FirstBad, res.Reason, res.Detail)
	}
	hr := HeadReport{Checked: len(sorted)}
	for i := range sorted {
		h := &sorted[i]
		mac, held := found[h.Seq]
		switch {
		case !held:
			hr.Problem, hr.Missed = HeadTruncated, h
			hr.Detail = fmt.Sprintf("the log ends at seq %d, before the published head at seq %d", res.lastSeq, h.Seq)
		case !hmac.Equal(mac[:], wantMAC(want, h.Seq)):
			hr.Problem, hr.Missed = HeadDiverged, h
			hr.Detail = fmt.Sprintf("the record at seq %d has mac %s, not the published %s", h.Seq, hex.EncodeToString(mac[:]), h.MAC)
		default:
			hr.Matched++
			hr.LastMatched = h
			continue
		}
		return res.Report, hr, fmt.Errorf("%w: %s at seq %d: %s", ErrHeadMismatch, hr.Problem, h.Seq, hr.Detail)
	}
	return res.Report, hr, nil
}

// wantMAC is the mac expected at seq, as a slice for hmac.Equal.
func wantMAC(want map[uint64][sha256.Size]byte, seq uint64) []byte {
	mac := want[seq]
	return mac[:]
}
