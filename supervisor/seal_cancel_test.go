package supervisor

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda/cudatest"
	"github.com/vramseal/vramseal/internal/testwait"
	"github.com/vramseal/vramseal/messages"
)

// TestSealCancelledWhileRecordingStillSeals cancels a seal's context while
// its VramSealed record is being made durable: the record is written either
// way, so the seal must go on to commit, or the log would name a shard that
// never became live.
func TestSealCancelledWhileRecordingStillSeals(t *testing.T) {
	sink := &cancellingSink{next: audit.NewMemory()}
	w := newTestWorker(t, []int64{10 * MiB}, func(c *Config) { c.Audit = sink })
	ctx, cancel := context.WithCancel(context.Background())
	sink.cancel = cancel
	data := cudatest.Pattern(5, 100*KiB)
	s, err := w.Seal(ctx, messages.SealRequest{ID: "m", Data: bytes.NewReader(data), Size: int64(len(data))})
	require.NoError(t, err)
	require.NoError(t, w.Verify(context.Background(), s))
}

// cancellingSink cancels a context as it records a VramSealed record, then
// records it.
type cancellingSink struct {
	next   *audit.Memory
	cancel context.CancelFunc
}

func (s *cancellingSink) Record(ctx context.Context, rec audit.Record) error {
	if rec.Event == audit.EventVramSealed {
		s.cancel()
	}
	if err := s.next.Record(ctx, rec); err != nil {
		return err
	}
	return ctx.Err()
}

func TestCancelledSealWithAHungReaderFreesAtOnce(t *testing.T) {
	w := newTestWorker(t, []int64{16 * MiB}, nil)
	r := newStalledReader(3 * 64 * KiB)
	ctx, cancel := context.WithCancel(context.Background())
	sealed := make(chan error, 1)
	go func() {
		_, err := w.Seal(ctx, messages.SealRequest{ID: "s", Data: r, Size: 10 * 64 * KiB})
		sealed <- err
	}()
	testwait.Receive(t, r.started, "first read of the stalled seal")
	cancel()
	require.Eventually(t, func() bool {
		return w.sims[0].Outstanding() == 0 && len(w.events(audit.EventVramAllocationFailed)) == 1
	}, 10*time.Second, time.Millisecond, "the cancelled seal frees its memory and records why while its reader still hangs")
	assert.Equal(t, "cancelled", w.events(audit.EventVramAllocationFailed)[0].Fields["reason"])
	w.seal(t, 0, "s", 64*KiB) // its ID is free again
	select {
	case err := <-sealed:
		t.Fatalf("Seal returned before its reader: %v", err)
	default:
	}
	close(r.unblock)
	assert.ErrorIs(t, testwait.Receive(t, sealed, "end of the cancelled seal"), context.Canceled)
}
