package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
)

func TestSealOneMiB(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	s := w.seal(t, 0, "model-a", MiB)

	assert.Equal(t, 0, s.Device)
	assert.Equal(t, MiB, s.Size)
	assert.Regexp(t, regexp.MustCompile(`^[0-9a-f]{64}$`), s.Digest)
	assert.True(t, s.Signed())
	sealed := w.events(audit.EventVramSealed)
	require.Len(t, sealed, 1)
	assert.Equal(t, "model-a", sealed[0].Fields["shard_id"])
	assert.Equal(t, 0, sealed[0].Fields["device"])
	assert.Equal(t, MiB, sealed[0].Fields["size"])
	assert.Equal(t, s.Digest, sealed[0].Fields["digest"])
	require.NoError(t, w.Verify(context.Background(), s))
}

func TestSealRejectsBadInputBeforeDeviceWork(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	before := len(w.audit.Records())
	for _, id := range []string{"../etc/passwd", "shard\x00null"} {
		_, err := w.Seal(context.Background(), messages.SealRequest{ID: id, Data: bytes.NewReader(make([]byte, KiB)), Size: KiB})
		assert.ErrorIs(t, err, messages.ErrInvalidInput, id)
	}
	_, err := w.Seal(context.Background(), messages.SealRequest{ID: "empty", Data: bytes.NewReader(nil), Size: 0})
	assert.ErrorIs(t, err, messages.ErrInvalidInput)
	assert.Zero(t, w.sims[0].Outstanding())
	assert.Len(t, w.audit.Records(), before, "no record for rejected input")
	w.seal(t, 0, "valid", KiB)
}

func TestSealInsufficientVRAM(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	_, err := w.Seal(context.Background(), messages.SealRequest{ID: "big", Data: bytes.NewReader(make([]byte, 20*MiB)), Size: 20 * MiB})
	var vramErr *messages.InsufficientVRAMError
	require.True(t, errors.As(err, &vramErr), "%v", err)
	assert.Equal(t, 20*MiB, vramErr.Needed)
	assert.Equal(t, 10*MiB, vramErr.Available)
	assert.ErrorIs(t, err, messages.ErrInsufficientVRAM)
	assert.True(t, messages.IsRetriable(err))
	w.seal(t, 0, "five", 5*MiB)
}

func TestSealCapacityIsExact(t *testing.T) {
	t.Run("exactly the device fits an empty device", func(t *testing.T) {
		w := newTestWorker(t, []int64{10 * MiB}, nil)
		w.seal(t, 0, "whole", 10*MiB)
	})
	t.Run("four 15 MiB seals on 50 MiB", func(t *testing.T) {
		w := newTestWorker(t, []int64{50 * MiB}, nil)
		for i := range 3 {
			w.seal(t, 0, fmt.Sprintf("s%d", i), 15*MiB)
		}
		_, err := w.Seal(context.Background(), messages.SealRequest{ID: "s3", Data: bytes.NewReader(make([]byte, 15*MiB)), Size: 15 * MiB})
		var vramErr *messages.InsufficientVRAMError
		require.ErrorAs(t, err, &vramErr)
		assert.Equal(t, 5*MiB, vramErr.Available)
	})
	t.Run("headroom is kept free", func(t *testing.T) {
		w := newTestWorker(t, []int64{10 * MiB}, func(c *Config) { c.Headroom = 2 * MiB })
		_, err := w.Seal(context.Background(), messages.SealRequest{ID: "all", Data: bytes.NewReader(make([]byte, 10*MiB)), Size: 10 * MiB})
		var vramErr *messages.InsufficientVRAMError
		require.ErrorAs(t, err, &vramErr)
		assert.Equal(t, 8*MiB, vramErr.Available)
		w.seal(t, 0, "fits", 8*MiB)
		c, err := w.Capacity(context.Background(), 0)
		require.NoError(t, err)
		assert.Equal(t, 8*MiB, c.Held)
		assert.Equal(t, 2*MiB, c.Free)
	})
}

func TestSealIDs(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB, 10 * MiB}, nil)
	generated := w.seal(t, 0, "", KiB)
	assert.Regexp(t, `^shard-[0-9a-f]{24}$`, generated.ID)
	w.seal(t, 0, "taken", KiB)
	_, err := w.Seal(context.Background(), messages.SealRequest{Device: 1, ID: "taken", Data: bytes.NewReader(make([]byte, KiB)), Size: KiB})
	assert.ErrorIs(t, err, messages.ErrDuplicateShard, "IDs are unique across devices")
	assert.Zero(t, w.sims[1].Outstanding())
}

func TestSealRejectsDataOfTheWrongLength(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	for name, n := range map[string]int64{"short": KiB - 1, "long": KiB + 1} {
		_, err := w.Seal(context.Background(), messages.SealRequest{ID: name, Data: bytes.NewReader(make([]byte, n)), Size: KiB})
		assert.ErrorIs(t, err, messages.ErrInvalidInput, name)
	}
	assert.Zero(t, w.sims[0].Outstanding())
	c, err := w.Capacity(context.Background(), 0)
	require.NoError(t, err)
	assert.Zero(t, c.Held)
}

func TestSealRejectsBadRecordFieldsBeforeDeviceWork(t *testing.T) {
	w := newTestWorker(t, []int64{10 * MiB}, nil)
	for name, req := range map[string]messages.SealRequest{
		"control character in model ref": {ModelRef: "model\x1b[31m"},
		"model ref too long":             {ModelRef: strings.Repeat("m", 1025)},
		"index beyond total":             {ShardIndex: 3, TotalShards: 3},
		"negative index":                 {ShardIndex: -1, TotalShards: 3},
		"no data":                        {},
	} {
		req.ID, req.Size = "bad", KiB
		if name != "no data" {
			req.Data = bytes.NewReader(make([]byte, KiB))
		}
		_, err := w.Seal(context.Background(), req)
		assert.ErrorIs(t, err, messages.ErrInvalidInput, name)
	}
	assert.Zero(t, w.sims[0].Outstanding())
	assert.Empty(t, w.events(audit.EventVramAllocationFailed), "rejected before any device work")
}

// panickingReader panics once its first n bytes are read.
type panickingReader struct{ n int }

func (r *panickingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		panic("injected reader panic")
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestAPanickingReaderFailsOnlyItsSeal(t *testing.T) {
	for _, size := range []int64{32 * KiB, 10 * 64 * KiB} {
		w := newTestWorker(t, []int64{16 * MiB}, nil)
		_, err := w.Seal(context.Background(), messages.SealRequest{ID: "s", Data: &panickingReader{n: int(size / 2)}, Size: size})
		assert.ErrorIs(t, err, messages.ErrInvalidInput, "size %d: the caller's reader's panic is the caller's", size)
		assert.NoError(t, w.Err(), "size %d: the worker runs on", size)
		assert.Zero(t, w.sims[0].Outstanding())
	}
}

// panickingCheck is a seal check that panics, as a bug in vramseal's own
// checks would.
type panickingCheck struct{}

func (panickingCheck) Write([]byte) (int, error) { panic("injected check panic") }
func (panickingCheck) Result(string) error       { return nil }

func TestAPanicWhileHashingASealFailStops(t *testing.T) {
	w := newTestWorker(t, []int64{16 * MiB}, nil)
	size := 10 * 64 * KiB
	_, err := w.Seal(context.Background(), messages.SealRequest{ID: "s", Data: bytes.NewReader(make([]byte, size)), Size: size, Check: panickingCheck{}})
	assert.ErrorIs(t, err, messages.ErrSoftwareFault)
	w.waitStopped(t)
	assert.ErrorIs(t, w.Err(), messages.ErrSoftwareFault, "a panic in our goroutines fail-stops, not crashes")
	assert.Zero(t, w.sims[0].Outstanding())
}
