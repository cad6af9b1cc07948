package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConcurrentWritersShareCommits(t *testing.T) {
	writers, perWriter := 1000, 25 // 25,000 records: enough to interleave every writer many times
	if testing.Short() {
		writers = 100
	}
	key := testKey(t, "w1")
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, LogConfig{Key: key})
	require.NoError(t, err)

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for n := range perWriter {
				r := Record{Event: EventSealVerified, Severity: SeverityInfo, Fields: map[string]any{"writer": w, "n": n}}
				if err := l.Record(context.Background(), r); err != nil {
					errs <- fmt.Errorf("writer %d record %d: %w", w, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	st := l.Stats()
	require.NoError(t, l.Close())

	total := writers * perWriter
	assert.Equal(t, uint64(total), st.Records)
	assert.Less(t, st.Syncs, st.Records/2, "concurrent records share fsyncs")

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	require.Len(t, lines, total)
	next := make([]int, writers) // the n each writer's next record must carry
	for i, raw := range lines {
		var line struct {
			Seq    uint64
			Fields struct{ Writer, N int }
		}
		require.NoError(t, json.Unmarshal(raw, &line))
		require.Equal(t, uint64(i+1), line.Seq, "seq has a gap or repeats")
		w, n := line.Fields.Writer, line.Fields.N
		require.Equal(t, next[w], n, "writer %d's records out of order or repeated", w)
		next[w]++
	}
	for w, n := range next {
		assert.Equal(t, perWriter, n, "writer %d", w)
	}
	assert.Equal(t, total, verifyFile(t, path, key).Records)
}
