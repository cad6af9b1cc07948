// Package audit records what happens to every shard: the Sink interface the
// runtime writes to, an in-memory sink for tests, and the durable,
// hash-chained log file with its verifier.
package audit
