package stress

import (
	"context"
	"fmt"
	"time"

	"github.com/vramseal/vramseal/supervisor"
)

// bigSealRate seals one BigSeal shard onto a simulated device whose memory
// is faulted in before the clock starts, and compares the rate with one
// core's SHA-256: a seal hashes every byte once on one stream, while the
// next chunk is read as the current one is hashed and copied.
func (b *bencher) bigSealRate(ctx context.Context, hashRate float64) (BenchResult, error) {
	cfg := b.cfg
	rig, err := supervisor.MakeRig(ctx, supervisor.RigConfig{
		Capacities: []int64{cfg.BigSeal + 64*mib}, Name: "bench", Seed: -1, Prefault: true,
		Config: supervisor.Config{Key: b.key, WorkerID: "bench", Audit: discardSink{}, Logger: cfg.Logger},
	})
	if err != nil {
		return BenchResult{}, err
	}
	start := time.Now()
	_, err = b.sealPattern(ctx, rig.Seal, 0, "big", cfg.BigSeal)
	elapsed := time.Since(start)
	if err := stopRuntime(rig.Runtime, err); err != nil {
		return BenchResult{}, fmt.Errorf("bench a big seal: %w", err)
	}
	single := hashRate / float64(b.cores)
	return atLeast(bigSealRow, "MB/s", mbps(cfg.BigSeal, elapsed), single,
		fmt.Sprintf("one %s seal in %v onto a prefaulted Sim; reference: single-core SHA-256", humanBytes(cfg.BigSeal), elapsed.Round(time.Millisecond))), nil
}
