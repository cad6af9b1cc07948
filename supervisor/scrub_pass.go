package supervisor

import (
	"time"

	"github.com/vramseal/vramseal/actors"
)

// ScrubPass is what one background scrub pass over one device did, as
// Config.OnScrubPass receives it.
type ScrubPass struct {
	// Device is the index of the device scrubbed.
	Device int
	// Shards and Bytes count the shards found intact and their size: every
	// shard live on the device when the pass began, unless a mismatch ended
	// the pass early.
	Shards int
	Bytes  int64
	// Elapsed is how long the pass took, including any --scrub-rate pauses.
	Elapsed time.Duration
	// Mismatches counts shards whose memory no longer matched their seal; a
	// mismatch ends the pass and fail-stops the worker.
	Mismatches int
	// Time is when the pass ended.
	Time time.Time
}

// scrubPassReporter turns a device's verifier reports into ScrubPass values
// for Config.OnScrubPass; nil when no one listens.
func (r *Runtime) scrubPassReporter(device int) func(actors.PassReport) {
	on := r.cfg.OnScrubPass
	if on == nil {
		return nil
	}
	return func(p actors.PassReport) {
		on(ScrubPass{Device: device, Shards: p.Shards, Bytes: p.Bytes, Elapsed: p.End.Sub(p.Start), Mismatches: p.Mismatches, Time: p.End})
	}
}
