package audit

import (
	"encoding/hex"
	"encoding/json"
	"time"
)

// Head is where a log's chain stands: the seq, mac and time of its last
// durable record. A head kept away from the host catches what the chain
// alone cannot: records cut from the end of a log leave a shorter log that
// is intact, but that no longer holds a head published before the cut (see
// VerifyHeads). A head is a MAC, so publishing it reveals nothing about
// the key.
type Head struct {
	// WorkerID is the worker whose log it is.
	WorkerID string `json:"worker_id"`
	// Seq is the last durable record's seq; 0 for a log with no record.
	Seq uint64 `json:"seq"`
	// MAC is that record's mac, 64 hex digits; empty when Seq is 0.
	MAC string `json:"mac"`
	// Time is that record's time, as its line says it.
	Time time.Time `json:"time"`
}

// LogAttrs are the head as key-value pairs for a structured log line, the
// form ParseHeadLine reads back: worker_id, seq, mac and record_time.
func (h Head) LogAttrs() []any {
	return []any{"worker_id", h.WorkerID, "seq", h.Seq, "mac", h.MAC, "record_time", h.Time.UTC().Format(TimeLayout)}
}

// HeadLogMessage is the message of the log line a head is published with.
const HeadLogMessage = "audit head"

// Head is where the log stands now: its last durable record, or the last
// record found on Open. It is safe to call at any time, also after Close.
func (l *Log) Head() Head {
	if h := l.head.Load(); h != nil {
		return *h
	}
	return Head{WorkerID: l.workerID}
}

// advanceHead makes the log's head its last record, written at l.stamp.
// Only the writer goroutine calls it, after a batch is durable.
func (l *Log) advanceHead() {
	t, _ := time.Parse(TimeLayout, string(l.stamp)) // the writer wrote the stamp in this layout
	l.head.Store(&Head{WorkerID: l.workerID, Seq: l.seq, MAC: hex.EncodeToString(l.chain.prev[:]), Time: t})
}

// foundHead is the head of a log as Open found it.
func foundHead(workerID string, res scanResult) *Head {
	h := &Head{WorkerID: workerID, Seq: res.lastSeq}
	if res.lastSeq > 0 {
		h.MAC = res.Head
		var stamp string
		if json.Unmarshal(res.lastTime, &stamp) == nil {
			h.Time, _ = time.Parse(TimeLayout, stamp) // a line that verified was written in this layout
		}
	}
	return h
}
