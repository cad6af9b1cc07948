package stress

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

type testBaseline struct {
	*Baseline
	sims  []*cuda.Sim
	audit *audit.Memory
}

// newTestBaseline builds a Baseline over n 16 MiB Sims with 64 KiB chunks.
func newTestBaseline(t *testing.T, n int) *testBaseline {
	t.Helper()
	key, err := sealer.DeriveKey([]byte("test-token-0123456789abcdef"), "baseline")
	require.NoError(t, err)
	tb := &testBaseline{audit: audit.NewMemory()}
	var devices []cuda.Device
	for i := range n {
		sim, err := cuda.NewSim(cuda.SimConfig{Capacity: 16 * mib, Seed: int64(i)})
		require.NoError(t, err)
		tb.sims = append(tb.sims, sim)
		devices = append(devices, sim)
	}
	tb.Baseline, err = NewBaseline(BaselineConfig{Devices: devices, Key: key, ChunkSize: 64 * kib, Audit: tb.audit})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tb.Close()) })
	return tb
}

func (tb *testBaseline) seal(t *testing.T, device int, id string, size int64) sealer.Shard {
	t.Helper()
	s, err := tb.Seal(context.Background(), messages.SealRequest{Device: device, ID: id, Data: bytes.NewReader(patterned(size)), Size: size})
	require.NoError(t, err)
	return s
}

func patterned(n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func TestBaselineSealVerifyRelease(t *testing.T) {
	for _, size := range []int64{1, 64 * kib, 200 * kib} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			tb := newTestBaseline(t, 2)
			s := tb.seal(t, 1, "shard", size)
			assert.True(t, s.Signed())
			assert.Equal(t, size, s.Size)
			assert.Equal(t, (size+64*kib-1)/(64*kib), s.Chunks())
			assert.Equal(t, 1, tb.sims[1].Outstanding())

			require.NoError(t, tb.Verify(context.Background(), s))
			require.NoError(t, tb.Release(context.Background(), s))
			assert.Zero(t, tb.sims[1].Outstanding())
			assert.ErrorIs(t, tb.Verify(context.Background(), s), messages.ErrUnknownShard)

			var events []string
			for _, r := range tb.audit.Records() {
				events = append(events, r.Event)
			}
			assert.Equal(t, []string{audit.EventVramSealed, audit.EventSealVerified, audit.EventVramDeallocated}, events)
		})
	}
}

func TestBaselineVerifyNamesTheFlippedChunk(t *testing.T) {
	tb := newTestBaseline(t, 1)
	s := tb.seal(t, 0, "shard", 200*kib)
	allocs := tb.sims[0].Allocations()
	require.Len(t, allocs, 1)
	require.NoError(t, tb.sims[0].FlipBit(allocs[0].Handle, 150*kib, 5))

	err := tb.Verify(context.Background(), s)
	assert.ErrorIs(t, err, messages.ErrSealVerificationFailed)
	var ie *messages.IntegrityError
	require.True(t, errors.As(err, &ie), "%v", err)
	assert.Equal(t, "shard", ie.ShardID)
	assert.Equal(t, int64(2), ie.Chunk)
	assert.Equal(t, 128*kib, ie.Offset)
}

func TestBaselineRejects(t *testing.T) {
	tb := newTestBaseline(t, 1)
	s := tb.seal(t, 0, "taken", kib)
	altered := s
	altered.Size++
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"duplicate ID", func() error {
			_, err := tb.Seal(context.Background(), messages.SealRequest{ID: "taken", Data: bytes.NewReader(patterned(kib)), Size: kib})
			return err
		}, messages.ErrDuplicateShard},
		{"bad device", func() error {
			_, err := tb.Seal(context.Background(), messages.SealRequest{Device: 3, ID: "x", Data: bytes.NewReader(nil), Size: 1})
			return err
		}, messages.ErrInvalidInput},
		{"short data", func() error {
			_, err := tb.Seal(context.Background(), messages.SealRequest{ID: "short", Data: bytes.NewReader(patterned(10)), Size: kib})
			return err
		}, messages.ErrInvalidInput},
		{"too large", func() error {
			_, err := tb.Seal(context.Background(), messages.SealRequest{ID: "huge", Data: bytes.NewReader(nil), Size: 32 * mib})
			return err
		}, messages.ErrInsufficientVRAM},
		{"altered record on verify", func() error { return tb.Verify(context.Background(), altered) }, messages.ErrSealVerificationFailed},
		{"altered record on release", func() error { return tb.Release(context.Background(), altered) }, messages.ErrSealVerificationFailed},
		{"unsigned record", func() error { return tb.Verify(context.Background(), sealer.Shard{ID: "x"}) }, messages.ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, tt.call(), tt.want)
			assert.Equal(t, 1, tb.sims[0].Outstanding(), "only the sealed shard is allocated")
		})
	}
}

func TestBaselineCopyFailureFreesMemory(t *testing.T) {
	tb := newTestBaseline(t, 1)
	tb.sims[0].FailWriteAfter(100 * kib)
	defer tb.sims[0].FailWriteAfter(-1)
	_, err := tb.Seal(context.Background(), messages.SealRequest{ID: "cut", Data: bytes.NewReader(patterned(200 * kib)), Size: 200 * kib})
	assert.ErrorIs(t, err, cuda.ErrCopyFailed)
	assert.Zero(t, tb.sims[0].Outstanding())
}

func TestBaselineConcurrentCallers(t *testing.T) {
	tb := newTestBaseline(t, 2)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for c := range 16 {
		wg.Go(func() {
			for i := range 4 {
				id := fmt.Sprintf("c%d-%d", c, i)
				s, err := tb.Seal(context.Background(), messages.SealRequest{Device: c % 2, ID: id, Data: bytes.NewReader(patterned(70 * kib)), Size: 70 * kib})
				if err == nil {
					err = tb.Verify(context.Background(), s)
				}
				if err == nil && i%2 == 0 {
					err = tb.Release(context.Background(), s)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	assert.Equal(t, 32, tb.sims[0].Outstanding()+tb.sims[1].Outstanding())
}
