package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkLog measures durable records per second with each sync mode, from
// one writer and from a thousand at once. Group commit at 1,000 writers
// should reach at least 20x SyncEach at 1,000 writers.
func BenchmarkLog(b *testing.B) {
	key := testKey(b, "bench")
	r := record(1)
	for _, mode := range []SyncMode{GroupCommit, SyncEach, NoSync} {
		for _, writers := range []int{1, 1000} {
			b.Run(fmt.Sprintf("%s/writers=%d", mode, writers), func(b *testing.B) {
				l, err := Open(filepath.Join(b.TempDir(), "audit.log"), LogConfig{Key: key, Sync: mode})
				require.NoError(b, err)
				var issued atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				for range writers {
					wg.Go(func() {
						for issued.Add(1) <= int64(b.N) {
							if err := l.Record(context.Background(), r); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				st := l.Stats()
				require.NoError(b, l.Close())
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
				b.ReportMetric(float64(st.Records)/float64(max(st.Writes, 1)), "records/write")
			})
		}
	}
}
