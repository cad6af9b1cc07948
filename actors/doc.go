// Package actors holds vramseal's actors: one GPU actor per device, which
// alone touches that device and its allocation table, and one verifier per
// device, which re-hashes sealed memory in the background. Callers talk to
// them through GPURef and VerifierRef, whose calls carry reply channels.
package actors
