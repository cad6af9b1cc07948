package audit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vramseal/vramseal/audit"
)

// Open a log, record two events, close it, and verify the file.
func Example() {
	dir, err := os.MkdirTemp("", "audit-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.log")

	key, err := audit.DeriveKey([]byte("token-read-from-a-file"), "worker-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer key.Zero()
	clock := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC) }
	log, err := audit.Open(path, audit.LogConfig{Key: key, Now: clock})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	for _, r := range []audit.Record{
		{Event: audit.EventVramSealed, Severity: audit.SeverityInfo, Fields: map[string]any{"shard": "layer-0", "bytes": 4096}},
		{Event: audit.EventSealVerified, Severity: audit.SeverityInfo, Fields: map[string]any{"shard": "layer-0"}},
	} {
		if err := log.Record(ctx, r); err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := log.Close(); err != nil {
		fmt.Println(err)
		return
	}

	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	first, _, _ := strings.Cut(string(data), "\n")
	fmt.Println(first)
	report, err := audit.Verify(strings.NewReader(string(data)), key)
	fmt.Println(report.Records, report.Intact(), err)
	// Output:
	// {"seq":1,"time":"2026-01-02T03:04:05.000000006Z","worker_id":"worker-1","event":"VramSealed","severity":"info","fields":{"bytes":4096,"shard":"layer-0"},"mac":"b6332318ebfdc507541719fff6360aab7df5ce36e03a95dfa297b16740065fcb"}
	// 2 true <nil>
}
