package stress

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/vramseal/vramseal/internal/units"
)

// Operation kinds a Report counts and times.
const (
	OpSeal    = "seal"
	OpVerify  = "verify"
	OpRelease = "release"
)

var opKinds = []string{OpSeal, OpVerify, OpRelease}

// OpStats describe one kind of operation over the whole run.
type OpStats struct {
	// OK and Failed count the calls that succeeded and failed; calls the
	// runtime refused because it was stopping are in neither.
	OK     int `json:"ok"`
	Failed int `json:"failed"`
	// PerSecond is OK calls per second of the run.
	PerSecond float64 `json:"per_second"`
	// Latency is over the calls that succeeded.
	Latency Latency `json:"latency"`
}

// FaultCount is how many faults of one kind were injected, and how many of
// them were seen handled as they must be: a failed allocation or copy
// reported to its caller, a failed read retried (or made moot by a free),
// a flipped bit or a lost device ending in a fail-stop that names it.
type FaultCount struct {
	Injected int `json:"injected"`
	Detected int `json:"detected"`
}

// Report is the outcome of Run.
type Report struct {
	Devices     int    `json:"devices"`
	Seals       int    `json:"seals"`
	Concurrency int    `json:"concurrency"`
	Seed        int64  `json:"seed"`
	FaultRates  Faults `json:"fault_rates"`

	// Elapsed is the run's wall time, restarts included.
	Elapsed time.Duration `json:"elapsed_ns"`
	// Runtimes is how many runtimes ran; Restarts how many of them were
	// started after a fail-stop.
	Runtimes int `json:"runtimes"`
	Restarts int `json:"restarts"`

	// Ops are by kind: seal, verify, release.
	Ops map[string]OpStats `json:"ops"`
	// SealErrors counts failed seals by cause.
	SealErrors map[string]int `json:"seal_errors"`
	// Faults are by kind: alloc, copy, read, bitflip, lost.
	Faults map[string]FaultCount `json:"faults"`
	// DetectionLatency is from each flip to the runtime's stop.
	DetectionLatency Latency `json:"detection_latency"`
	// ScrubVerified counts shards the background scrub found intact.
	ScrubVerified int `json:"scrub_verified"`
	// AccountingChecks counts the accounting snapshots checked.
	AccountingChecks int `json:"accounting_checks"`
	// PeakHeapBytes is the largest live heap sampled during the run.
	PeakHeapBytes uint64 `json:"peak_heap_bytes"`

	// Violations counts broken invariants; ViolationSamples describes the
	// first few.
	Violations       int      `json:"violations"`
	ViolationSamples []string `json:"violation_samples"`
}

// OK reports whether the run broke no invariant.
func (r Report) OK() bool { return r.Violations == 0 }

// WriteText writes the report as tables for people.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("stress: %d devices, %d seals, %d callers, seed %d, faults %s\n", r.Devices, r.Seals, r.Concurrency, r.Seed, r.FaultRates)
	p("elapsed %v, %d runtimes (%d restarts after fail-stop), peak heap %s, %d accounting checks, %d shards scrubbed\n\n",
		r.Elapsed.Round(time.Millisecond), r.Runtimes, r.Restarts, units.Bytes(int64(r.PeakHeapBytes)), r.AccountingChecks, r.ScrubVerified)
	p("op\tok\tfailed\tper s\tp50\tp95\tp99\tmax\n")
	for _, kind := range opKinds {
		o := r.Ops[kind]
		p("%s\t%d\t%d\t%.0f\t%v\t%v\t%v\t%v\n", kind, o.OK, o.Failed, o.PerSecond, round(o.Latency.P50), round(o.Latency.P95), round(o.Latency.P99), round(o.Latency.Max))
	}
	p("\nfault\tinjected\tdetected\n")
	for _, kind := range faultKinds {
		f := r.Faults[kind]
		p("%s\t%d\t%d\n", kind, f.Injected, f.Detected)
	}
	d := r.DetectionLatency
	p("\nflip detection (flip to stop): %d flips, p50 %v, p99 %v, max %v\n", d.Count, round(d.P50), round(d.P99), round(d.Max))
	reasons := make([]string, 0, len(r.SealErrors))
	for reason := range r.SealErrors {
		reasons = append(reasons, reason)
	}
	slices.Sort(reasons)
	p("seal errors:")
	for _, reason := range reasons {
		p(" %s=%d", reason, r.SealErrors[reason])
	}
	p("\n\nviolations: %d\n", r.Violations)
	for _, s := range r.ViolationSamples {
		p("  - %s\n", s)
	}
	return tw.Flush()
}

// round shortens a latency for a table.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}
