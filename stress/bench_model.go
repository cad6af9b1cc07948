package stress

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/vramseal/vramseal/internal/parallel"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/model"
	"github.com/vramseal/vramseal/supervisor"
)

// modelSeal seals ModelFiles files of ModelFileSize bytes, as "vramseal run
// DIR" does: up to min(cores, files) at once, each checked against its
// published whole-file digest before it is acknowledged, onto 4 simulated
// devices whose memory is faulted in before the clock starts.
func (b *bencher) modelSeal(ctx context.Context, hashRate float64) (BenchResult, error) {
	cfg := b.cfg
	const devices = 4
	perDevice := (int64(cfg.ModelFiles) + devices - 1) / devices * cfg.ModelFileSize
	rig, err := supervisor.MakeRig(ctx, supervisor.RigConfig{
		Capacities: slices.Repeat([]int64{perDevice + 64*mib}, devices), Name: "bench", Seed: -1, Prefault: true,
		Config: supervisor.Config{Key: b.key, WorkerID: "bench", Audit: discardSink{}, Logger: b.cfg.Logger},
	})
	if err != nil {
		return BenchResult{}, err
	}
	rt := rig.Runtime
	starts := make([]int, cfg.ModelFiles)
	digests := make([]string, cfg.ModelFiles)
	for i := range starts { // untimed: the publisher's digests
		starts[i] = i * (len(b.pool) / cfg.ModelFiles)
		h := sha256.New()
		if _, err := io.Copy(h, &cycleReader{pool: b.pool, pos: starts[i], left: cfg.ModelFileSize}); err != nil {
			return BenchResult{}, stopRuntime(rt, err)
		}
		digests[i] = hex.EncodeToString(h.Sum(nil))
	}
	callers := min(b.cores, cfg.ModelFiles)
	start := time.Now()
	err = parallel.Each(callers, cfg.ModelFiles, func(i int) error {
		return b.sealModelFile(ctx, rt, i, starts[i], digests[i])
	})
	elapsed := time.Since(start)
	if err := stopRuntime(rt, err); err != nil {
		return BenchResult{}, fmt.Errorf("bench model seal: %w", err)
	}
	total := int64(cfg.ModelFiles) * cfg.ModelFileSize
	measured := mbps(total, elapsed)
	reference := float64(callers) * hashRate / float64(b.cores) / 2
	res := atLeast(modelSealRow, "MB/s", measured, reference,
		fmt.Sprintf("%d files of %s, %d at once onto %d simulated devices (memory pre-touched), each checked against its published SHA-256; reference min(cores, files) = %d x single-core SHA-256 / 2",
			cfg.ModelFiles, humanBytes(cfg.ModelFileSize), callers, devices, callers))
	return res, nil
}

// sealModelFile seals file i of the model from the pool, checked against
// digest.
func (b *bencher) sealModelFile(ctx context.Context, rt *supervisor.Runtime, i, start int, digest string) error {
	size := b.cfg.ModelFileSize
	name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, b.cfg.ModelFiles)
	check, err := model.NewMatcher([]model.Expectation{{Name: name, Source: "bench", SHA256: digest}}, size)
	if err != nil {
		return err
	}
	_, err = rt.Seal(ctx, messages.SealRequest{Device: i % rt.Devices(), ID: fmt.Sprintf("model-%d", i), Size: size,
		Data: &cycleReader{pool: b.pool, pos: start, left: size}, Check: check, ModelRef: "bench-model",
		ShardIndex: i, TotalShards: b.cfg.ModelFiles})
	return err
}
