// Package audit records what happens to every shard: the Sink interface the
// runtime writes to, an in-memory sink for tests, and the durable,
// hash-chained log file with its verifier.
//
// # The log file
//
// A log is a file of JSON lines, one record each, appended to and never
// rewritten:
//
//	{"seq":1,"time":"2026-01-02T03:04:05.000000006Z","worker_id":"w1","event":"VramSealed","severity":"info","fields":{"shard":"s1"},"mac":"9f…"}
//
// seq counts from 1 without gaps; time is RFC 3339 in UTC with nine digits
// of nanoseconds, when the record's batch was written (records committed
// together share it); a record's Fields are kept under "fields" (always an
// object), so they can never collide with the keys around them. mac is
// HMAC-SHA256, in hex, under the audit key, of the previous record's mac
// followed by this line without its mac (the line up to `,"mac":` and a
// closing brace). The first record chains from a genesis value, the mac of
// a fixed label and the worker ID. The audit key is derived from the worker
// token with HKDF under its own label, so whoever edits, deletes, reorders
// or inserts lines without the token cannot repair the chain; Verify finds
// the first bad line and says which of these happened. Deleting records
// from the end leaves a shorter intact log: to catch that, a HeadPublisher
// ships the log's Head (seq, mac and time of its last durable record) off
// the host as it grows, and VerifyHeads checks that a log still holds every
// head published from it. docs/audit-format.md, in the repository, is the
// format to the byte and the catalogue of events.
//
// # Durability
//
// Log.Record returns only once its record is on disk. Records from
// concurrent callers are committed together, one write and one fsync for
// all of them (group commit), by the one writer goroutine a Log owns:
// callers encode their records themselves, and the writer takes every
// record queued when it starts a batch, while those arriving during its
// fsync make the next. While the CPU is saturated the writer lets a batch
// grow a little before its fsync, so that fsyncs take at most a quarter of
// its time; a lone record is never held back. On Linux, while goroutines
// wait for a CPU, the fsync is handed to the kernel (AIO) and the writer
// parks until the kernel reports it done, so its P runs callers meanwhile;
// no record is answered before that report. The queue to it is bounded:
// when it is full callers wait, and no record is ever dropped. A write or fsync that fails fails the log for good (what
// reached the disk is unknown); reopening the file checks it. A crash can
// leave a torn last line, never acknowledged: Open cuts it off and records
// the cut as an EventLogTruncated record with fields "bytes_cut" and
// "after_seq" (the last intact seq). A line is torn only if its mac does
// not verify: a last record that lacks only its newline is kept, and Open
// ends it. A file removed or replaced underneath the writer fails the log
// (ErrLogFailed), as a failed write does; the batch a failure interrupts is
// cut again, so the log ends with its last durable record. Any other damage makes Open fail with
// messages.ErrIntegrityViolation rather than continue a tampered log.
package audit
