package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/supervisor"
)

// After a fail-stop the worker exits at once, so no scrape reaches it:
// this test wires a runtime to the log, the publisher, the metrics and the
// handler as the worker does, fail-stops it, and reads all three.
func TestAuditHeadAgreesWithTheLogAfterAFailStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	token := make([]byte, 32)
	rand.Read(token)
	key, err := audit.DeriveKey(token, "rig")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	log, err := audit.Open(path, audit.LogConfig{Key: key})
	require.NoError(t, err)
	m, err := newMetrics(log.QueueDepth, nil)
	require.NoError(t, err)
	require.NoError(t, m.watchAudit(log.Head))
	var logged syncBuffer
	heads := publishHeads(log, slog.New(slog.NewJSONHandler(&logged, nil)), m)
	defer heads.Close()
	defer log.Close()

	rig, err := supervisor.MakeRig(ctx, supervisor.RigConfig{Config: supervisor.Config{Audit: heads}})
	require.NoError(t, err)
	defer rig.Stop(context.Background())
	server := httptest.NewServer(newHandler(rig, rig.Done(), m, nil, log.Head))
	defer server.Close()

	data := make([]byte, 256<<10)
	rand.Read(data)
	shard, err := rig.Seal(ctx, messages.SealRequest{Device: 0, ID: "s", Data: bytes.NewReader(data), Size: int64(len(data))})
	require.NoError(t, err)
	_, _, _, err = rig.Sims[0].FlipRandomBit()
	require.NoError(t, err)
	require.True(t, errors.Is(rig.Verify(ctx, shard), messages.ErrSealVerificationFailed))
	select {
	case <-rig.Done():
	case <-ctx.Done():
		require.FailNow(t, "the runtime did not fail-stop")
	}

	want := fileHead(t, path)
	lines := readAuditLog(t, path)
	require.Equal(t, audit.EventWorkerStopped, lines[len(lines)-1].Event, "the fail-stop's record is the log's last")
	_, body := httpGet(t, server.URL+"/audit/head")
	served, err := audit.ParseHeadLine(body)
	require.NoError(t, err, body)
	assert.Equal(t, want, served, "/audit/head")
	assert.Equal(t, float64(want.Seq), value(scrapeMetrics(t, server.URL)["vram_audit_head_seq"].Metric[0]), "vram_audit_head_seq")
	published := publishedHeads(t, logged.String())
	require.NotEmpty(t, published)
	assert.Equal(t, want, published[len(published)-1], "the critical stop was published as it was written")
	stamp := value(scrapeMetrics(t, server.URL)["vram_audit_head_published_timestamp_seconds"].Metric[0])
	assert.InDelta(t, float64(time.Now().Unix()), stamp, float64(processTimeout/time.Second), "the time of the last head published")
}
