// Package share serves a runtime's sealed shards to other processes on the
// same host: a lease server on a Unix socket (Listen), speaking protocol v1
// (docs/share-protocol.md). A client maps a shard's memory read-only and
// without a copy, through a descriptor passed with its grant; the
// connection is the lease, and a revocation (integrity failure, eviction,
// stop) reaches the client before the memory is freed. Dial is the Go
// client.
package share
