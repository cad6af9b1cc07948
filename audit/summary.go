package audit

import (
	"encoding/json"
	"errors"
	"io"
	"slices"
	"time"
)

// Summary is what a log's records say about the worker's history: how many,
// by whom, over what time, which critical events, and how the worker last
// stopped. Summarize reads it without checking the chain; Verify says
// whether the records can be trusted.
type Summary struct {
	// Records is the number of records summed up.
	Records int
	// Workers are the worker IDs the records name, sorted.
	Workers []string
	// First and Last are the times of the first and last record.
	First, Last time.Time
	// Critical counts the critical records by event.
	Critical map[string]int
	// LastStop is the last WorkerStopped record; nil if there is none.
	LastStop *Stop
	// KeyFingerprints are the token fingerprints the WorkerStarted records
	// name, in order of first appearance: the tokens the log was written
	// with.
	KeyFingerprints []string
	// Backends are the device backends the WorkerStarted records name
	// ("sim", "cuda"; "" for one that names none), in order of first
	// appearance.
	Backends []string
}

// Stop is how a worker stopped, as its WorkerStopped record says.
type Stop struct {
	Time     time.Time
	Graceful bool
	// Cause is the fail-stop's cause; empty for a graceful stop.
	Cause string
}

// summaryLine is the part of a record line a Summary reads.
type summaryLine struct {
	Time     time.Time      `json:"time"`
	WorkerID string         `json:"worker_id"`
	Event    string         `json:"event"`
	Severity Severity       `json:"severity"`
	Fields   map[string]any `json:"fields"`
}

// Summarize sums up the first limit records of a log (every one when limit
// is negative), stopping early at a line that is not a record.
func Summarize(r io.Reader, limit int) (Summary, error) {
	s := Summary{Critical: map[string]int{}}
	lr := newLineReader(withoutBlankTail(r))
	for limit < 0 || s.Records < limit {
		ln, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return s, err
		}
		p, err := ln.parse()
		if err != nil {
			break
		}
		var rec summaryLine
		if json.Unmarshal(p.body, &rec) != nil {
			break
		}
		s.add(rec)
	}
	slices.Sort(s.Workers)
	return s, nil
}

// add counts one record.
func (s *Summary) add(rec summaryLine) {
	s.Records++
	if s.First.IsZero() {
		s.First = rec.Time
	}
	s.Last = rec.Time
	if !slices.Contains(s.Workers, rec.WorkerID) {
		s.Workers = append(s.Workers, rec.WorkerID)
	}
	if rec.Severity == SeverityCritical {
		s.Critical[rec.Event]++
	}
	switch rec.Event {
	case EventWorkerStarted:
		if fp, ok := rec.Fields["key_fingerprint"].(string); ok && !slices.Contains(s.KeyFingerprints, fp) {
			s.KeyFingerprints = append(s.KeyFingerprints, fp)
		}
		if backend, _ := rec.Fields["backend"].(string); !slices.Contains(s.Backends, backend) {
			s.Backends = append(s.Backends, backend)
		}
	case EventWorkerStopped:
		stop := &Stop{Time: rec.Time}
		stop.Graceful, _ = rec.Fields["graceful"].(bool)
		stop.Cause, _ = rec.Fields["cause"].(string)
		s.LastStop = stop
	}
}
