package stress

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/vramseal/vramseal/internal/units"
	"github.com/vramseal/vramseal/sealer"
)

// BenchConfig sizes the measurements of Bench. Zero values take the
// defaults, which together run for about half a minute on two cores.
type BenchConfig struct {
	// ScrubBytes, in ScrubShards shards on one device, are scrubbed for
	// ScrubWindow in each run. Defaults: 256 MiB, 16, 2 s.
	ScrubBytes  int64
	ScrubShards int
	ScrubWindow time.Duration
	// VerifyBytes is the one large shard Verify re-hashes VerifyRounds
	// times in each run. Defaults: 256 MiB, 4.
	VerifyBytes  int64
	VerifyRounds int
	// SmallSeals of SmallSize bytes are sealed by Callers callers over
	// Devices devices in each throughput run. Defaults: 20000, 4 KiB,
	// 1000, 4.
	SmallSeals int
	SmallSize  int64
	Callers    int
	Devices    int
	// Rounds is how many runs of each throughput measurement alternate
	// with its reference's (the scrub's and Verify's with a measurement of
	// copy+SHA-256); the best of each counts. Default 2.
	Rounds int
	// BigSeal is the large seal that small verifies run beside, and whose
	// host memory is measured. Default 1 GiB.
	BigSeal int64
	// ModelFiles files of ModelFileSize bytes make the model sealed as
	// "vramseal run DIR" does. Defaults: 8, 128 MiB.
	ModelFiles    int
	ModelFileSize int64
	// ShareShardBytes is the shard a lease server's client acquires and
	// maps ShareAcquires times; ShareRevokeClients clients each hold a
	// lease when a fail-stop revokes them; ShareClients clients hold
	// leases on the scrub row's shards. Defaults: 1 GiB, 200, 200, 1000.
	ShareShardBytes    int64
	ShareAcquires      int
	ShareRevokeClients int
	ShareClients       int
	// TempDir holds the durable audit log and the lease server's socket;
	// "" means the system's.
	TempDir string
	// Logger receives the runtimes' log lines; nil discards them.
	Logger *slog.Logger
}

func (cfg BenchConfig) withDefaults() BenchConfig {
	cfg.ScrubBytes = orDefault(cfg.ScrubBytes, 256*mib)
	cfg.ScrubShards = orDefault(cfg.ScrubShards, 16)
	cfg.ScrubWindow = orDefault(cfg.ScrubWindow, 2*time.Second)
	cfg.VerifyBytes = orDefault(cfg.VerifyBytes, 256*mib)
	cfg.VerifyRounds = orDefault(cfg.VerifyRounds, 4)
	cfg.SmallSeals = orDefault(cfg.SmallSeals, 20000)
	cfg.SmallSize = orDefault(cfg.SmallSize, 4*kib)
	cfg.Callers = orDefault(cfg.Callers, 1000)
	cfg.Devices = orDefault(cfg.Devices, 4)
	cfg.Rounds = orDefault(cfg.Rounds, 2)
	cfg.BigSeal = orDefault(cfg.BigSeal, 1<<30)
	cfg.ModelFiles = orDefault(cfg.ModelFiles, 8)
	cfg.ModelFileSize = orDefault(cfg.ModelFileSize, 128*mib)
	cfg.ShareShardBytes = orDefault(cfg.ShareShardBytes, 1<<30)
	cfg.ShareAcquires = orDefault(cfg.ShareAcquires, 200)
	cfg.ShareRevokeClients = orDefault(cfg.ShareRevokeClients, 200)
	cfg.ShareClients = orDefault(cfg.ShareClients, 1000)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// BenchResult is one design target: what was measured, what it is measured
// against, their ratio, and whether the target is met.
type BenchResult struct {
	Name      string  `json:"name"`
	Unit      string  `json:"unit"`
	Measured  float64 `json:"measured"`
	Reference float64 `json:"reference"`
	Ratio     float64 `json:"ratio"`
	Target    string  `json:"target"`
	Pass      bool    `json:"pass"`
	// Note says how the numbers were taken.
	Note string `json:"note,omitempty"`
}

// BenchReport is the outcome of Bench.
type BenchReport struct {
	// Cores is GOMAXPROCS; SHA256 is one core's SHA-256 rate in MB/s, and
	// CopySHA256 its rate copying 4 MiB from memory and then hashing it, as
	// scrubbing a simulated device does.
	Cores      int           `json:"cores"`
	SHA256     float64       `json:"sha256_mb_per_s"`
	CopySHA256 float64       `json:"copy_sha256_mb_per_s"`
	Results    []BenchResult `json:"results"`
}

// Pass reports whether every target is met.
func (r BenchReport) Pass() bool {
	for _, res := range r.Results {
		if !res.Pass {
			return false
		}
	}
	return true
}

// WriteText writes the results as a table for people.
func (r BenchReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "bench: %d cores; one core hashes %.0f MB/s with SHA-256, %.0f MB/s copying each 4 MiB first\n\n", r.Cores, r.SHA256, r.CopySHA256)
	fmt.Fprintf(tw, "target\tmeasured\treference\tratio\twant\tresult\n")
	for _, res := range r.Results {
		verdict := "pass"
		if !res.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%.4g %s\t%.4g %s\t%.3f\t%s\t%s\n", res.Name, res.Measured, res.Unit, res.Reference, res.Unit, res.Ratio, res.Target, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, res := range r.Results {
		if res.Note != "" {
			fmt.Fprintf(w, "%s: %s\n", res.Name, res.Note)
		}
	}
	return nil
}

// Bench measures, in one run on this machine, every target of the design
// (BenchTargets): background scrub and Verify throughput against the cores'
// copy+SHA-256 rate, hashing in place against copying out, small seals
// through the actors against the mutex Baseline, seals with a durable audit
// log against none, the p99 of small verifies beside a large seal on the
// same device, the p99 of Acquire+Release, one large seal and a model of
// many files against SHA-256, the host memory a large seal takes, and the
// lease server: a remote Acquire+map's p99, a fail-stop's revocation
// reaching its clients, and the scrub while its clients hold leases.
func Bench(ctx context.Context, cfg BenchConfig) (BenchReport, error) {
	cfg = cfg.withDefaults()
	token := make([]byte, 32)
	rand.Read(token)
	key, err := sealer.DeriveKey(token, "bench")
	if err != nil {
		return BenchReport{}, err
	}
	defer key.Zero()
	report := BenchReport{Cores: runtime.GOMAXPROCS(0)}
	if report.SHA256, err = measureSHA256(ctx); err != nil {
		return report, err
	}
	if report.CopySHA256, err = measureCopySHA256(ctx); err != nil {
		return report, err
	}
	b := &bencher{cfg: cfg, key: key, token: token, pool: newDataPool(1), cores: report.Cores}
	hashRate := float64(report.Cores) * report.SHA256
	steps := []func(context.Context, float64) (BenchResult, error){
		b.scrubThroughput, b.verifyThroughput, b.deviceHashScrub, b.deviceHashVerify,
		b.smallSeals, b.durableAudit, b.verifyBesideBigSeal, b.acquireRelease, b.bigSealRate, b.sealHostMemory, b.modelSeal,
		b.remoteAcquire, b.revocationReach, b.sharedScrub,
	}
	for _, step := range steps {
		res, err := step(ctx, hashRate)
		if err != nil {
			return report, err
		}
		report.Results = append(report.Results, res)
	}
	return report, nil
}

// bencher holds what the measurements share.
type bencher struct {
	cfg   BenchConfig
	key   *sealer.Key
	token []byte
	pool  dataPool
	cores int
}

// atLeast is the result of row, whose measured value must reach its ratio
// to reference.
func atLeast(row BenchTarget, unit string, measured, reference float64, note string) BenchResult {
	ratio := 0.0
	if reference > 0 {
		ratio = measured / reference
	}
	return BenchResult{Name: row.Name, Unit: unit, Measured: measured, Reference: reference, Ratio: ratio,
		Target: row.Want, Pass: ratio >= row.atLeast, Note: note}
}

// p99Below is the result of a latency row: lat's p99 in unit, against
// target, passing when some were measured and the p99 is under target.
func p99Below(row BenchTarget, unit string, per time.Duration, lat Latency, target time.Duration, note string) BenchResult {
	p99 := float64(lat.P99) / float64(per)
	ref := float64(target) / float64(per)
	return BenchResult{Name: row.Name, Unit: unit, Measured: p99, Reference: ref, Ratio: p99 / ref,
		Target: row.Want, Pass: lat.Count > 0 && lat.P99 < target, Note: note}
}

// mbps is a byte rate in MB/s (10^6 bytes).
func mbps(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / d.Seconds() / 1e6
}

// humanBytes is units.Bytes, for notes.
func humanBytes(n int64) string { return units.Bytes(n) }
