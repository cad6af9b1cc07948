package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda/cudatest"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

func TestVerifyPassesRepeatedlyAndAsTimeMovesOn(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	w := newTestWorker(t, []int64{10 * MiB}, func(c *Config) {
		c.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	})
	s := w.seal(t, 0, "steady", 300*KiB)
	for i := range 1000 {
		require.NoError(t, w.Verify(context.Background(), s), "verify %d", i)
	}
	clock.Add(int64(30 * 24 * time.Hour))
	require.NoError(t, w.Verify(context.Background(), s))
	shards, err := w.Shards(context.Background())
	require.NoError(t, err)
	require.Len(t, shards, 1)
	assert.Equal(t, time.Unix(0, clock.Load()), shards[0].LastVerified)
	assert.Len(t, w.events(audit.EventSealVerified), 1001)
}

func TestVerifyAlteredRecordFailStops(t *testing.T) {
	otherKey, err := sealer.DeriveKey([]byte("another-token-0123456789"), "test-worker")
	require.NoError(t, err)
	cases := map[string]func(s *sealer.Shard){
		"digest zeroed":     func(s *sealer.Shard) { s.Digest = "0000000000000000000000000000000000000000000000000000000000000000" },
		"signature zeroed":  func(s *sealer.Shard) { *s = zeroSignature(t, *s) },
		"size":              func(s *sealer.Shard) { s.Size++ },
		"device":            func(s *sealer.Shard) { s.Device = 1 },
		"chunk size":        func(s *sealer.Shard) { s.ChunkSize *= 2 },
		"chunk root":        func(s *sealer.Shard) { s.ChunkRoot = s.Digest },
		"sealed at":         func(s *sealer.Shard) { s.SealedAt = s.SealedAt.Add(time.Nanosecond) },
		"model ref":         func(s *sealer.Shard) { s.ModelRef = "other" },
		"shard index":       func(s *sealer.Shard) { s.ShardIndex = 1 },
		"total shards":      func(s *sealer.Shard) { s.TotalShards = 3 },
		"signed by another": func(s *sealer.Shard) { require.NoError(t, sealer.Sign(otherKey, s)) },
	}
	for name, alter := range cases {
		t.Run(name, func(t *testing.T) {
			w := newTestWorker(t, []int64{10 * MiB, 10 * MiB}, nil)
			s, err := w.Seal(context.Background(), messages.SealRequest{ID: "target", Data: bytes.NewReader(cudatest.Pattern(1, 200*KiB)),
				Size: 200 * KiB, ModelRef: "model", ShardIndex: 0, TotalShards: 4})
			require.NoError(t, err)
			alter(&s)
			err = w.Verify(context.Background(), s)
			require.ErrorIs(t, err, messages.ErrSealVerificationFailed)
			w.waitStopped(t)
			assert.ErrorIs(t, w.Err(), messages.ErrSealVerificationFailed)
			failed := w.events(audit.EventSealVerificationFailed)
			require.Len(t, failed, 1)
			assert.Equal(t, audit.SeverityCritical, failed[0].Severity)
			assert.Zero(t, w.sims[0].Outstanding())
		})
	}
}

// zeroSignature returns s with its signature replaced by zero bytes of the
// same length, through the record's JSON form.
func zeroSignature(t *testing.T, s sealer.Shard) sealer.Shard {
	t.Helper()
	b, err := json.Marshal(s)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	m["signature"] = strings.Repeat("0", len(m["signature"].(string)))
	b, err = json.Marshal(m)
	require.NoError(t, err)
	var out sealer.Shard
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func TestVerifyUnsignedRecordDoesNotStop(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	s := w.seal(t, 0, "target", 100*KiB)
	unsigned := sealer.Shard{ID: s.ID, Device: s.Device, Size: s.Size, Digest: s.Digest, ChunkSize: s.ChunkSize,
		ChunkRoot: s.ChunkRoot, SealedAt: s.SealedAt, ModelRef: s.ModelRef, ShardIndex: s.ShardIndex, TotalShards: s.TotalShards}
	require.ErrorIs(t, w.Verify(context.Background(), unsigned), messages.ErrNotSealed)
	require.NoError(t, w.Verify(context.Background(), s), "the runtime keeps serving")
	assert.Nil(t, w.Err())
}

func TestVerifyCatchesAFlippedBit(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	var shards []sealer.Shard
	for _, id := range []string{"one", "two", "three"} {
		shards = append(shards, w.seal(t, 0, id, 512*KiB))
	}
	second := w.sims[0].Allocations()[1]
	const offset = 3*64*KiB + 100
	require.NoError(t, w.sims[0].FlipBit(second.Handle, offset, 5))

	require.NoError(t, w.Verify(context.Background(), shards[0]))
	err := w.Verify(context.Background(), shards[1])
	require.ErrorIs(t, err, messages.ErrSealVerificationFailed)
	assert.Contains(t, err.Error(), `shard "two"`)
	assert.Contains(t, err.Error(), "chunk 3 (bytes 196608-262143)")
	assert.ErrorIs(t, w.Verify(context.Background(), shards[2]), messages.ErrStopped)

	w.waitStopped(t)
	assert.ErrorIs(t, w.Err(), messages.ErrSealVerificationFailed)
	assert.Zero(t, w.sims[0].Outstanding(), "all VRAM freed")
	failed := w.events(audit.EventSealVerificationFailed)
	require.Len(t, failed, 1)
	assert.Equal(t, "two", failed[0].Fields["shard_id"])
	assert.Equal(t, int64(3), failed[0].Fields["chunk"])
	assert.Len(t, w.events(audit.EventVramDeallocated), 3)
	records := w.audit.Records()
	assert.Equal(t, audit.EventWorkerStopped, records[len(records)-1].Event)
}

func TestVerifyUnknownShard(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	s := w.seal(t, 0, "gone", 100*KiB)
	require.NoError(t, w.Free(context.Background(), s))
	assert.ErrorIs(t, w.Verify(context.Background(), s), messages.ErrUnknownShard)
	assert.ErrorIs(t, w.Free(context.Background(), s), messages.ErrUnknownShard)
	assert.Nil(t, w.Err(), "a released shard is not an integrity failure")
	assert.Zero(t, w.sims[0].Outstanding())
}
