package supervisor

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
)

func TestAllocationFailureIsRetriable(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	w.sims[0].FailAllocations(1)
	_, err := w.Seal(context.Background(), messages.SealRequest{ID: "first", Data: bytes.NewReader(make([]byte, KiB)), Size: KiB})
	require.ErrorIs(t, err, messages.ErrAllocationFailed)
	assert.True(t, messages.IsRetriable(err))
	failed := w.events(audit.EventVramAllocationFailed)
	require.Len(t, failed, 1)
	assert.Equal(t, "allocation_failed", failed[0].Fields["reason"])
	w.seal(t, 0, "first", KiB)
	assert.Nil(t, w.Err())
}

func TestSealFailingPartWayHoldsNothing(t *testing.T) {
	t.Run("copy fails", func(t *testing.T) {
		w := newTestWorker(t, []int64{10 * MiB}, nil)
		w.sims[0].FailWriteAfter(3*64*KiB + 10)
		_, err := w.Seal(context.Background(), messages.SealRequest{ID: "torn", Data: bytes.NewReader(make([]byte, MiB)), Size: MiB})
		require.Error(t, err)
		w.sims[0].FailWriteAfter(-1)
		assertNothingHeld(t, w)
		w.seal(t, 0, "torn", MiB)
	})
	t.Run("context cancelled", func(t *testing.T) {
		w := newTestWorker(t, []int64{10 * MiB}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		data := &cancelAfter{r: bytes.NewReader(make([]byte, MiB)), left: 200 * KiB, cancel: cancel}
		_, err := w.Seal(ctx, messages.SealRequest{ID: "cancelled", Data: data, Size: MiB})
		require.ErrorIs(t, err, context.Canceled)
		assertNothingHeld(t, w)
	})
}

// cancelAfter reads from r and cancels a context once left bytes are read.
type cancelAfter struct {
	r      io.Reader
	left   int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.left -= int64(n); c.left <= 0 {
		c.cancel()
	}
	return n, err
}

func assertNothingHeld(t *testing.T, w *testWorker) {
	t.Helper()
	shards, err := w.Shards(context.Background())
	require.NoError(t, err)
	assert.Empty(t, shards)
	c, err := w.Capacity(context.Background(), 0)
	require.NoError(t, err)
	assert.Zero(t, c.Held)
	assert.Equal(t, c.Total, c.Free)
	assert.Zero(t, w.sims[0].Outstanding())
	assert.Nil(t, w.Err())
}

func TestReadErrorsDuringVerify(t *testing.T) {
	t.Run("retried", func(t *testing.T) {
		w := newTestWorker(t, []int64{10 * MiB}, nil)
		s := w.seal(t, 0, "flaky", 64*KiB)
		w.sims[0].FailReads(DefaultReadRetries)
		require.NoError(t, w.Verify(context.Background(), s))
		assert.Nil(t, w.Err())
	})
	t.Run("persistent", func(t *testing.T) {
		w := newTestWorker(t, []int64{10 * MiB}, nil)
		s := w.seal(t, 0, "broken", 64*KiB)
		w.sims[0].FailReads(DefaultReadRetries + 1)
		require.ErrorIs(t, w.Verify(context.Background(), s), messages.ErrDeviceFault)
		w.waitStopped(t)
		assert.ErrorIs(t, w.Err(), messages.ErrDeviceFault)
		assert.Zero(t, w.sims[0].Outstanding())
		require.Len(t, w.events(audit.EventSealVerificationFailed), 1)
	})
}

func TestLostDeviceFailStops(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB, 10 * MiB}, nil)
	w.seal(t, 1, "survivor", MiB)
	w.sims[0].Lose()
	_, err := w.Seal(context.Background(), messages.SealRequest{ID: "doomed", Data: bytes.NewReader(make([]byte, KiB)), Size: KiB})
	require.ErrorIs(t, err, messages.ErrDeviceFault)
	w.waitStopped(t)
	assert.ErrorIs(t, w.Err(), messages.ErrDeviceFault)
	assert.Zero(t, w.sims[1].Outstanding(), "the healthy device is freed too")
}
