// Package sealer holds what a seal is and how it is checked: shard records,
// the worker key, streaming digests, signatures and input validation. It is
// pure: no actors, no devices.
package sealer
