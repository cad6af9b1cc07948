// Package actors holds vramseal's actors: one GPU actor per device, which
// alone touches that device and its allocation table, and one verifier per
// device, which re-hashes sealed memory in the background. They are the
// children of a GPU parent and a verifier parent, under the runtime's
// supervisor, each parent spawned with the strategy its children need
// (supervision.go). Callers talk to them through GPURef and VerifierRef,
// whose calls carry reply channels.
package actors
