package supervisor

import (
	"bytes"
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda/cudatest"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// BenchmarkSmallVerifyLatency reports the p99 of Verify on a 64 KiB shard of
// device 0, alone and while a 256 MiB seal streams onto the same device.
func BenchmarkSmallVerifyLatency(b *testing.B) {
	for _, tc := range []struct {
		name     string
		withSeal bool
	}{{"idle", false}, {"during-256MiB-seal", true}} {
		b.Run(tc.name, func(b *testing.B) {
			rt, small := startBenchRuntime(b)
			ctx := context.Background()
			sealDone := make(chan error, 1)
			if tc.withSeal {
				go func() {
					_, err := rt.Seal(ctx, messages.SealRequest{ID: "large", Data: io.LimitReader(zeroReader{}, 256*MiB), Size: 256 * MiB})
					sealDone <- err
				}()
			} else {
				sealDone <- nil
			}
			latencies := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				if err := rt.Verify(ctx, small); err != nil {
					b.Fatal(err)
				}
				latencies = append(latencies, time.Since(start))
			}
			b.StopTimer()
			require.NoError(b, <-sealDone)
			slices.Sort(latencies)
			b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
			require.NoError(b, rt.Stop(ctx))
		})
	}
}

func startBenchRuntime(b *testing.B) (*Runtime, sealer.Shard) {
	rig, err := MakeRig(context.Background(), RigConfig{Capacities: []int64{512 * MiB}})
	require.NoError(b, err)
	rt := rig.Runtime
	small, err := rt.Seal(context.Background(), messages.SealRequest{ID: "small", Data: bytes.NewReader(cudatest.Pattern(1, 64*KiB)), Size: 64 * KiB})
	require.NoError(b, err)
	return rt, small
}

// zeroReader reads zeros forever.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
