package audit

import (
	"context"
	"crypto/sha256"
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

// discardSink drops every record: the reference BenchmarkLogAmidWork
// measures the log against.
type discardSink struct{}

func (discardSink) Record(context.Context, Record) error { return nil }

// BenchmarkLogAmidWork has a thousand callers hash 32 KiB before each
// record, about the CPU time a small seal takes, with the records
// discarded and with group commit: on a machine whose CPUs the callers
// keep busy, what durability costs them. The design wants group commit at
// 0.7x the discarding rate or better.
func BenchmarkLogAmidWork(b *testing.B) {
	key := testKey(b, "bench")
	r := record(1)
	data := make([]byte, 32<<10)
	for _, name := range []string{"discard", "group-commit"} {
		b.Run("sink="+name, func(b *testing.B) {
			var sink Sink = discardSink{}
			var l *Log
			if name == "group-commit" {
				var err error
				l, err = Open(filepath.Join(b.TempDir(), "audit.log"), LogConfig{Key: key})
				require.NoError(b, err)
				sink = l
			}
			var issued atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range 1000 {
				wg.Go(func() {
					for issued.Add(1) <= int64(b.N) {
						sha256.Sum256(data)
						if err := sink.Record(context.Background(), r); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			if l != nil {
				st := l.Stats()
				require.NoError(b, l.Close())
				b.ReportMetric(float64(st.Records)/float64(max(st.Writes, 1)), "records/write")
			}
		})
	}
}
