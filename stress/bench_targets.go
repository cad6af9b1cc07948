package stress

import (
	"fmt"
	"slices"
	"time"
)

// The design's targets, each the one value its row of Bench and the
// `vramseal bench --help` text both read.
const (
	// scrubTarget and verifyTarget are fractions of cores x one core's
	// copy+SHA-256, the rate a device that must copy its data out allows.
	scrubTarget  = 0.95
	verifyTarget = 0.95
	// deviceHashTarget is hashing in place against copying out, on a Sim.
	deviceHashTarget = 0.95
	// smallSealTarget is small seals through the actors against the
	// mutex-per-device Baseline.
	smallSealTarget = 0.9
	// durableAuditTarget is small seals with a durable group-committed
	// audit log against the same seals with none.
	durableAuditTarget = 0.8
	// verifyP99Target bounds the p99 of a small Verify beside a big seal.
	verifyP99Target = 2 * time.Millisecond
	// leaseP99Target bounds the p99 of one Acquire plus Release.
	leaseP99Target = 100 * time.Microsecond
	// bigSealTarget is one large seal against single-core SHA-256.
	bigSealTarget = 0.7
	// stagingMaxChunks bounds the host memory of a large seal, in chunks.
	stagingMaxChunks = 4
	// modelSealTarget is sealing a model of many files against
	// min(cores, files) x single-core SHA-256 / 2 (each byte is hashed
	// twice: into its file's digest and its chunk's).
	modelSealTarget = 0.8
	// remoteAcquireP99Target bounds the p99 of a lease server client's
	// Acquire and map of a large shard.
	remoteAcquireP99Target = time.Millisecond
	// revocationP99Target bounds the p99 of a revocation reaching a lease
	// server's client after a fail-stop begins.
	revocationP99Target = 20 * time.Millisecond
	// sharedScrubTarget is the scrub with many clients holding leases
	// against the same scrub with none.
	sharedScrubTarget = 0.9
)

// BenchTarget is one row of Bench: its name, what it must reach, and what
// it is measured against.
type BenchTarget struct {
	Name      string
	Want      string
	Reference string
	// atLeast, for a row that Want bounds from below, is the ratio to the
	// reference it must reach.
	atLeast float64
}

// The rows of Bench, in the order it measures them.
var (
	scrubRow = ratioRow("background scrub throughput", scrubTarget,
		"cores x one core's copy+SHA-256")
	verifyRow = ratioRow("Verify of one large shard", verifyTarget,
		"the same, for one 256 MiB shard")
	deviceHashScrubRow = ratioRow("device-side hashing, scrub", deviceHashTarget,
		"the scrub's chunks copied out, host-hashed")
	deviceHashVerifyRow = ratioRow("device-side hashing, Verify", deviceHashTarget,
		"the same, for Verify of one shard")
	smallSealRow = ratioRow("small seals through actors", smallSealTarget,
		"a mutex-per-device baseline")
	durableAuditRow = ratioRow("seals with durable audit", durableAuditTarget,
		"the same seals with no audit log")
	verifyP99Row = BenchTarget{Name: "Verify p99 beside a big seal", Want: fmt.Sprintf("< %v", verifyP99Target),
		Reference: "the target; beside a 1 GiB seal"}
	leaseRow = BenchTarget{Name: "Acquire+Release p99", Want: fmt.Sprintf("< %v", leaseP99Target),
		Reference: "the target; 1,000 callers, rate in the note"}
	bigSealRow = ratioRow("sealing one large shard", bigSealTarget,
		"one core's SHA-256 (1 GiB, prefaulted Sim)")
	stagingRow = BenchTarget{Name: "host memory sealing a big shard", Want: fmt.Sprintf("<= %d chunks", stagingMaxChunks),
		Reference: "one 4 MiB chunk"}
	modelSealRow = ratioRow("sealing a model of many files", modelSealTarget,
		"min(cores, files) x one core's SHA-256 / 2")
	remoteAcquireRow = BenchTarget{Name: "remote Acquire+map p99", Want: fmt.Sprintf("< %v, no bytes copied", remoteAcquireP99Target),
		Reference: "the target; a 1 GiB shard over the lease server"}
	revocationRow = BenchTarget{Name: "revocation reaching clients p99", Want: fmt.Sprintf("< %v", revocationP99Target),
		Reference: "the target; 200 clients, from FailStop"}
	sharedScrubRow = ratioRow("scrub with 1,000 clients holding leases", sharedScrubTarget,
		"the same scrub with no clients")
	benchTargets = []BenchTarget{scrubRow, verifyRow, deviceHashScrubRow, deviceHashVerifyRow,
		smallSealRow, durableAuditRow, verifyP99Row, leaseRow, bigSealRow, stagingRow, modelSealRow,
		remoteAcquireRow, revocationRow, sharedScrubRow}
)

// BenchTargets lists the rows of Bench in order, for help texts.
func BenchTargets() []BenchTarget { return slices.Clone(benchTargets) }

// ratioRow is a row whose measured value must reach want x its reference.
func ratioRow(name string, want float64, reference string) BenchTarget {
	return BenchTarget{Name: name, Want: fmt.Sprintf(">= %.2g x reference", want), Reference: reference, atLeast: want}
}
