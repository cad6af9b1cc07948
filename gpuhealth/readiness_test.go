package gpuhealth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
)

// fakeShards is a ShardLister with a fixed set of shards.
type fakeShards struct {
	shards []messages.ShardStatus
	err    error
}

func (f *fakeShards) Shards(context.Context) ([]messages.ShardStatus, error) { return f.shards, f.err }

func TestReadinessWantsEveryShardFreshlyVerifiedAndNoFailure(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fresh := messages.ShardStatus{ID: "a", LastVerified: now.Add(-time.Second)}
	stale := messages.ShardStatus{ID: "b", LastVerified: now.Add(-time.Minute)}
	never := messages.ShardStatus{ID: "c"}
	open := make(chan struct{})
	closed := make(chan struct{})
	close(closed)

	tests := []struct {
		name     string
		sealed   int // -1: still sealing
		window   time.Duration
		rt       *fakeShards
		stopped  chan struct{}
		observed []audit.Record
		evicted  map[int]string
		gpus     func() error
		wantErr  string
	}{
		{name: "ready", sealed: 1, window: 10 * time.Second, rt: &fakeShards{shards: []messages.ShardStatus{fresh}}, stopped: open},
		{name: "no window: verified once will do", sealed: 2, rt: &fakeShards{shards: []messages.ShardStatus{fresh, stale}}, stopped: open},
		{name: "sealing", sealed: -1, rt: &fakeShards{}, stopped: open, wantErr: "sealing in progress"},
		{name: "stale", sealed: 2, window: 10 * time.Second, rt: &fakeShards{shards: []messages.ShardStatus{fresh, stale}}, stopped: open,
			wantErr: `shard "b" was last verified 1m0s ago, longer than the 10s freshness window`},
		{name: "never verified", sealed: 1, rt: &fakeShards{shards: []messages.ShardStatus{never}}, stopped: open,
			wantErr: `shard "c" has not been verified since it was sealed`},
		{name: "shard missing", sealed: 2, rt: &fakeShards{shards: []messages.ShardStatus{fresh}}, stopped: open,
			wantErr: "1 of 2 sealed shards are live"},
		{name: "runtime error", sealed: 1, rt: &fakeShards{err: errors.New("boom")}, stopped: open, wantErr: "list shards: boom"},
		{name: "stopped", sealed: 1, rt: &fakeShards{shards: []messages.ShardStatus{fresh}}, stopped: closed, wantErr: "worker stopped"},
		{name: "failed verification", sealed: 1, rt: &fakeShards{shards: []messages.ShardStatus{fresh}}, stopped: open,
			observed: []audit.Record{{Event: audit.EventSealVerificationFailed, Severity: audit.SeverityCritical, Fields: map[string]any{"error": "chunk 3"}}},
			wantErr:  "integrity failure: SealVerificationFailed: chunk 3"},
		{name: "fail-stop", sealed: 1, rt: &fakeShards{shards: []messages.ShardStatus{fresh}}, stopped: open,
			observed: []audit.Record{{Event: audit.EventWorkerStopped, Severity: audit.SeverityCritical, Fields: map[string]any{"cause": "device lost"}}},
			wantErr:  "integrity failure: WorkerStopped: device lost"},
		{name: "evicted device", sealed: 2, rt: &fakeShards{shards: []messages.ShardStatus{fresh}}, stopped: open,
			evicted: map[int]string{3: "foreign processes [9]", 1: "foreign processes [4242 4343]"},
			wantErr: "device 1 evicted: foreign processes [4242 4343]"},
		{name: "GPU unfit", sealed: 1, rt: &fakeShards{shards: []messages.ShardStatus{fresh}}, stopped: open,
			gpus: func() error { return errors.New("device 0 is not fit") }, wantErr: "device 0 is not fit"},
		{name: "GPU unfit while sealing", sealed: -1, rt: &fakeShards{}, stopped: open,
			gpus: func() error { return errors.New("device 0 is not fit") }, wantErr: "device 0 is not fit"},
		{name: "GPUs fit", sealed: 1, rt: &fakeShards{shards: []messages.ShardStatus{fresh}}, stopped: open,
			gpus: func() error { return nil }},
		{name: "failure before eviction", sealed: 1, rt: &fakeShards{shards: []messages.ShardStatus{fresh}}, stopped: open,
			observed: []audit.Record{{Event: audit.EventSealVerificationFailed, Severity: audit.SeverityCritical, Fields: map[string]any{"error": "chunk 3"}}},
			evicted:  map[int]string{0: "foreign processes [9]"},
			wantErr:  "integrity failure: SealVerificationFailed: chunk 3"},
		{name: "graceful stop record is no failure", sealed: 1, rt: &fakeShards{shards: []messages.ShardStatus{fresh}}, stopped: open,
			observed: []audit.Record{{Event: audit.EventWorkerStopped, Severity: audit.SeverityInfo}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReadiness(tt.gpus)
			for device, reason := range tt.evicted {
				r.Evicted(device, reason)
			}
			if tt.sealed >= 0 {
				r.SealingDone(tt.sealed, tt.window)
			}
			for _, rec := range tt.observed {
				r.Observe(rec)
			}
			err := r.Check(context.Background(), tt.rt, tt.stopped, now)
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.EqualError(t, err, tt.wantErr)
		})
	}
}
