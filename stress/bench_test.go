package stress

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/sealer"
)

// tinyBench is a Bench that runs in a couple of seconds: it proves every
// target is measured and reported, not that any is met.
func tinyBench(t testing.TB) BenchConfig {
	return BenchConfig{
		ScrubBytes: 8 * mib, ScrubShards: 4, ScrubWindow: 200 * 1e6,
		VerifyBytes: 8 * mib, VerifyRounds: 2,
		SmallSeals: 400, Callers: 40, Devices: 2, Rounds: 1,
		BigSeal: 32 * mib, ModelFiles: 3, ModelFileSize: 4 * mib, TempDir: t.TempDir(),
		ShareShardBytes: 8 * mib, ShareAcquires: 20, ShareRevokeClients: 10, ShareClients: 20,
	}
}

func TestBenchReportsEveryTarget(t *testing.T) {
	r, err := Bench(context.Background(), tinyBench(t))
	require.NoError(t, err)

	assert.Positive(t, r.Cores)
	assert.Positive(t, r.SHA256)
	assert.Positive(t, r.CopySHA256)
	names := []string{}
	targets := BenchTargets()
	require.Len(t, r.Results, len(targets), "one result per target")
	for i, res := range r.Results {
		names = append(names, res.Name)
		assert.Equal(t, targets[i].Name, res.Name, "results come in the order of BenchTargets")
		assert.Equal(t, targets[i].Want, res.Target, "%s: the result wants what BenchTargets says", res.Name)
		assert.Positive(t, res.Measured, res.Name)
		assert.Positive(t, res.Reference, res.Name)
		assert.InDelta(t, res.Measured/res.Reference, res.Ratio, 1e-9, res.Name)
		assert.NotEmpty(t, res.Target, res.Name)
		assert.NotEmpty(t, res.Note, res.Name)
	}
	assert.Equal(t, []string{
		"background scrub throughput", "Verify of one large shard",
		"device-side hashing, scrub", "device-side hashing, Verify", "small seals through actors",
		"seals with durable audit", "Verify p99 beside a big seal", "Acquire+Release p99", "sealing one large shard", "host memory sealing a big shard",
		"sealing a model of many files", "remote Acquire+map p99", "revocation reaching clients p99",
		"scrub with 1,000 clients holding leases",
	}, names)
}

// newTestBencher is a bencher with the default sizes and measured rates.
func newTestBencher(b *testing.B) *bencher {
	token := make([]byte, 32)
	rand.Read(token)
	key, err := sealer.DeriveKey(token, "bench")
	require.NoError(b, err)
	b.Cleanup(key.Zero)
	return &bencher{cfg: BenchConfig{TempDir: b.TempDir()}.withDefaults(), key: key, token: token, pool: newDataPool(1),
		cores: runtime.GOMAXPROCS(0)}
}

// benchmarkSeals measures one small-seal throughput run per iteration.
func benchmarkSeals(b *testing.B, rate func(*bencher, context.Context) (float64, error)) {
	bn := newTestBencher(b)
	var sum float64
	for b.Loop() {
		r, err := rate(bn, context.Background())
		require.NoError(b, err)
		sum += r
	}
	b.ReportMetric(sum/float64(b.N), "seals/s")
}

func BenchmarkSmallSealsActors(b *testing.B) {
	benchmarkSeals(b, func(bn *bencher, ctx context.Context) (float64, error) { return bn.runtimeSealRate(ctx, discardSink{}) })
}

func BenchmarkSmallSealsBaseline(b *testing.B) {
	benchmarkSeals(b, (*bencher).baselineSealRate)
}

func BenchmarkSmallSealsDurableAudit(b *testing.B) {
	benchmarkSeals(b, func(bn *bencher, ctx context.Context) (float64, error) {
		key, err := audit.DeriveKey(bn.token, "bench")
		if err != nil {
			return 0, err
		}
		log, err := audit.Open(filepath.Join(b.TempDir(), "audit.log"), audit.LogConfig{Key: key})
		if err != nil {
			return 0, err
		}
		defer log.Close()
		rate, err := bn.runtimeSealRate(ctx, log)
		st := log.Stats()
		b.ReportMetric(float64(st.Records)/float64(st.Syncs), "records/fsync")
		return rate, err
	})
}

// benchmarkTarget runs one Bench measurement per iteration and reports its
// measured value and its ratio to the reference.
func benchmarkTarget(b *testing.B, measure func(*bencher, context.Context, float64) (BenchResult, error)) {
	bn := newTestBencher(b)
	sha, err := measureSHA256(context.Background())
	require.NoError(b, err)
	var res BenchResult
	for b.Loop() {
		res, err = measure(bn, context.Background(), float64(runtime.GOMAXPROCS(0))*sha)
		require.NoError(b, err)
	}
	b.ReportMetric(res.Measured, res.Unit)
	b.ReportMetric(res.Ratio, "x-reference")
}

func BenchmarkScrubThroughput(b *testing.B)  { benchmarkTarget(b, (*bencher).scrubThroughput) }
func BenchmarkVerifyThroughput(b *testing.B) { benchmarkTarget(b, (*bencher).verifyThroughput) }
func BenchmarkVerifyBesideBigSeal(b *testing.B) {
	benchmarkTarget(b, (*bencher).verifyBesideBigSeal)
}

// BenchmarkModelSeal seals the default model (8 files of 128 MiB) per
// iteration and reports its ratio to the target's reference.
func BenchmarkModelSeal(b *testing.B) {
	bn := newTestBencher(b)
	sha, err := measureSHA256(context.Background())
	require.NoError(b, err)
	var ratio float64
	for b.Loop() {
		res, err := bn.modelSeal(context.Background(), float64(bn.cores)*sha)
		require.NoError(b, err)
		ratio = res.Ratio
	}
	b.ReportMetric(ratio, "x-target-reference")
}

// BenchmarkDurableAudit runs the "seals with durable audit" row per
// iteration and reports its ratio to the run with records discarded.
func BenchmarkDurableAudit(b *testing.B) { benchmarkTarget(b, (*bencher).durableAudit) }
