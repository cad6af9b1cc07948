package supervisor

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/cuda/cudatest"
	"github.com/vramseal/vramseal/internal/testwait"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

const (
	KiB = int64(1) << 10
	MiB = int64(1) << 20
)

// testWorker is a runtime over simulated devices, with its audit sink, for
// tests. It stops the runtime when the test ends.
type testWorker struct {
	*Runtime
	sims  []*cuda.Sim
	audit *audit.Memory
	// logBroken says the test breaks the audit sink, so that Stop must
	// report the records it could not make durable.
	logBroken bool
	// stopErr, if set, is what the test expects Stop to report when it
	// ends (a leak it made on purpose).
	stopErr error
}

// newTestWorker starts a runtime over one simulated device of capacity bytes
// per entry in capacities, with 64 KiB chunks. edit may change the config.
func newTestWorker(t *testing.T, capacities []int64, edit func(*Config)) *testWorker {
	t.Helper()
	return newRigWorker(t, RigConfig{Capacities: capacities}, edit)
}

// newRigWorker is newTestWorker over the Sims rc describes.
func newRigWorker(t *testing.T, rc RigConfig, edit func(*Config)) *testWorker {
	t.Helper()
	key, err := sealer.DeriveKey([]byte("test-token-0123456789abcdef"), "test-worker")
	require.NoError(t, err)
	w := &testWorker{audit: audit.NewMemory()}
	cfg := Config{Key: key, WorkerID: "test-worker", ChunkSize: 64 * KiB, Audit: w.audit}
	if edit != nil {
		edit(&cfg)
	}
	rc.Config = cfg
	rig, err := MakeRig(context.Background(), rc)
	require.NoError(t, err)
	w.Runtime, w.sims = rig.Runtime, rig.Sims
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err := w.Stop(ctx)
		if w.stopErr != nil {
			assert.ErrorIs(t, err, w.stopErr)
			return
		}
		if w.logBroken {
			assert.ErrorIs(t, err, errAudit, "Stop reports the records it could not make durable")
			return
		}
		require.NoError(t, err)
	})
	return w
}

// seal seals size random bytes on device as id and requires success.
func (w *testWorker) seal(t *testing.T, device int, id string, size int64) sealer.Shard {
	t.Helper()
	s, err := w.Seal(context.Background(), messages.SealRequest{Device: device, ID: id, Data: bytes.NewReader(cudatest.Pattern(uint64(size), size)), Size: size})
	require.NoError(t, err)
	return s
}

// sealLeased seals a 64 KiB shard named "leased" on device 0 and acquires
// a lease on it.
func (w *testWorker) sealLeased(t *testing.T) (sealer.Shard, *Lease) {
	t.Helper()
	s := w.seal(t, 0, "leased", 64*KiB)
	l, err := w.Acquire(context.Background(), s)
	require.NoError(t, err)
	return s, l
}

// evictGivingUp evicts device 0 with a context that ends while a lease is
// held, and requires the Evict to say so.
func (w *testWorker) evictGivingUp(t *testing.T, msgAndArgs ...any) {
	t.Helper()
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := w.Evict(short, 0, "contention")
	require.ErrorIs(t, err, messages.ErrLeaseHeld, msgAndArgs...)
}

// events lists the audit events recorded so far, with the given name.
func (w *testWorker) events(name string) []audit.Record {
	var out []audit.Record
	for _, r := range w.audit.Records() {
		if r.Event == name {
			out = append(out, r)
		}
	}
	return out
}

// waitStopped waits, generously, for the runtime to stop by itself.
func (w *testWorker) waitStopped(t *testing.T) {
	t.Helper()
	testwait.Receive(t, w.Done(), "stop of the runtime")
}

// requireLeasedBytes checks that the memory l leases, on its open Sim,
// still holds the start of what seal wrote for s. It reads the Sim itself:
// a revoked lease no longer shows its memory.
func (w *testWorker) requireLeasedBytes(t *testing.T, l *Lease, s sealer.Shard) {
	t.Helper()
	got := make([]byte, 16)
	err := w.sims[s.Device].Read(l.held.Handle, 0, got)
	require.NoError(t, err, "the leased memory is still there, its device open")
	assert.Equal(t, cudatest.Pattern(uint64(s.Size), s.Size)[:16], got)
}
