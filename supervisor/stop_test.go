package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/internal/testwait"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

func TestStopWhileThousandsSeal(t *testing.T) {
	w := newTestWorker(t, []int64{256 * MiB, 256 * MiB}, nil)
	live := &liveShards{shards: map[string]sealer.Shard{}}
	started := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for g := range 1000 {
		wg.Go(func() {
			size := 16*KiB + int64(g)*64
			s, err := w.Seal(context.Background(), messages.SealRequest{Device: g % 2, ID: fmt.Sprintf("s%d", g), Data: bytes.NewReader(make([]byte, size)), Size: size})
			once.Do(func() { close(started) })
			switch {
			case err == nil:
				live.add(s)
			case errors.Is(err, messages.ErrStopped):
			default:
				t.Errorf("seal %d: want a shard or ErrStopped, got %v", g, err)
			}
		})
	}
	testwait.Receive(t, started, "first seal under way")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, w.Stop(ctx))
	wg.Wait()

	assert.Nil(t, w.Err())
	for i, sim := range w.sims {
		assert.Zero(t, sim.Outstanding(), "device %d", i)
	}
	freed := map[string]bool{}
	for _, r := range w.events(audit.EventVramDeallocated) {
		freed[r.Fields["shard_id"].(string)] = true
	}
	assert.Len(t, freed, len(live.shards))
	for id := range live.shards {
		assert.True(t, freed[id], "no VramDeallocated record for %s", id)
	}
	_, err := w.Seal(context.Background(), messages.SealRequest{ID: "late", Data: bytes.NewReader(make([]byte, KiB)), Size: KiB})
	assert.ErrorIs(t, err, messages.ErrStopped)
	_, err = w.Capacity(context.Background(), 0)
	assert.ErrorIs(t, err, messages.ErrStopped)
	assert.NoError(t, w.Stop(ctx), "Stop is idempotent")
}
