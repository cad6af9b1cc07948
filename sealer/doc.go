// Package sealer holds what a seal is and how it is checked: shard records,
// the worker key, streaming digests, HMAC signatures, and the validation of
// every signed field (a tensor table's rules and dtypes included). It is
// pure: no actors, no devices, no files; reading a model's files and
// checking that they are the published ones is package model's.
package sealer
