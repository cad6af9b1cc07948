package messages

import "time"

// ScrubPass reports one completed background scrub pass over one device.
type ScrubPass struct {
	// Device is the device index.
	Device int
	// Shards is how many shards fully matched.
	Shards int
	// Bytes is how many bytes those shards hold.
	Bytes int64
	// Elapsed is how long the pass took.
	Elapsed time.Duration
	// Mismatches is how many shards no longer matched (a pass stops at the
	// first, which fail-stops the worker).
	Mismatches int
	// At is when the pass ended.
	At time.Time
}
