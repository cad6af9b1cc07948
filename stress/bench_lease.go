package stress

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vramseal/vramseal/sealer"
)

// leaseShardSize is the size of the leased shards; each caller makes
// leasesPerCall pairs.
const (
	leaseShardSize = 64 << 10
	leasesPerCall  = 20
)

// acquireRelease has Callers callers acquire and release leases on small
// shards, one per device, and reports the p99 of one Acquire plus Release
// and the rate of the pairs.
func (b *bencher) acquireRelease(ctx context.Context, _ float64) (BenchResult, error) {
	cfg := b.cfg
	rt, _, err := b.startRuntime(ctx, cfg.Devices, 64*mib, discardSink{}, nil)
	if err != nil {
		return BenchResult{}, err
	}
	var lat Latency
	var elapsed time.Duration
	err = func() error {
		shards := make([]sealer.Shard, cfg.Devices)
		for i := range shards {
			s, err := b.sealPattern(ctx, rt.Seal, i, fmt.Sprint("leased-", i), leaseShardSize)
			if err != nil {
				return err
			}
			shards[i] = s
		}
		ds := make([][]time.Duration, cfg.Callers)
		errs := make([]error, cfg.Callers)
		start := time.Now()
		var callers sync.WaitGroup
		for c := range cfg.Callers {
			callers.Go(func() {
				for i := range leasesPerCall {
					t := time.Now()
					l, err := rt.Acquire(ctx, shards[(c+i)%len(shards)])
					if err != nil {
						errs[c] = err
						return
					}
					l.Release()
					ds[c] = append(ds[c], time.Since(t))
				}
			})
		}
		callers.Wait()
		elapsed = time.Since(start)
		var all []time.Duration
		for c := range ds {
			if errs[c] != nil {
				return errs[c]
			}
			all = append(all, ds[c]...)
		}
		lat = summarize(all)
		return nil
	}()
	if err := stopRuntime(rt, err); err != nil {
		return BenchResult{}, fmt.Errorf("bench acquire and release: %w", err)
	}
	return p99Below(leaseRow, "us", time.Microsecond, lat, leaseP99Target,
		fmt.Sprintf("%d callers, %d pairs over %d devices at %.0f pairs/s; p50 %v, max %v",
			cfg.Callers, lat.Count, cfg.Devices, float64(lat.Count)/elapsed.Seconds(), lat.P50.Round(time.Microsecond), lat.Max.Round(time.Microsecond))), nil
}
