// Package messages is the vocabulary shared by vramseal's actors and their
// callers: requests, replies, the integrity failure report, and the error
// kinds every layer returns.
//
// The actors' own protocol (the messages a GPU actor or a verifier accepts)
// lives beside each actor in package actors, not here: those messages carry
// sealer.Shard records, and package sealer imports this one for its errors,
// so this package cannot import sealer without a cycle.
package messages
