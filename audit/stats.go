package audit

import "sync/atomic"

// Stats counts what a Log has written since Open.
type Stats struct {
	// Records is the number of records written.
	Records uint64
	// Writes is the number of write calls: one per batch, or one per record
	// with SyncEach.
	Writes uint64
	// Syncs is the number of fsyncs.
	Syncs uint64
	// Bytes is the number of bytes written.
	Bytes uint64
	// LastSeq is the seq of the last record written, or found on Open.
	LastSeq uint64
}

// counters are the live values behind Stats.
type counters struct {
	records, writes, syncs, bytes, lastSeq atomic.Uint64
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	return Stats{
		Records: l.stats.records.Load(),
		Writes:  l.stats.writes.Load(),
		Syncs:   l.stats.syncs.Load(),
		Bytes:   l.stats.bytes.Load(),
		LastSeq: l.stats.lastSeq.Load(),
	}
}
