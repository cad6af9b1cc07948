// Package stress drives a vramseal runtime hard and checks that it keeps its
// invariants. Run starts a runtime over simulated GPUs, lets many callers
// seal, verify and release shards of mixed sizes at once while a fault
// injector fails allocations, stops copies part-way, fails reads, flips bits
// and loses devices, and a checker holds the design's invariants throughout
// and at every stop: exact accounting, every flip detected, no false alarm,
// no lost audit record, no allocation or goroutine left behind. A fail-stop
// is restarted with a fresh runtime, as a supervised worker would be.
//
// Baseline is the design a user would otherwise pick, one mutex per device
// and no actors; Bench measures the runtime against it and against the
// design's other targets.
package stress
