package supervisor

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRevokedLeaseSaysRevokedAndWhy revokes a lease each way a lease is
// revoked and checks that Err matches ErrRevoked and the cause, and that
// the lease's memory can no longer be reached through it: View,
// DevicePointer and a View taken before all fail with Err.
func TestRevokedLeaseSaysRevokedAndWhy(t *testing.T) {
	injected := fmt.Errorf("injected: %w", ErrDeviceFault)
	tests := []struct {
		name   string
		revoke func(t *testing.T, w *testWorker, s Shard) (wait func())
		cause  error
	}{
		{name: "evict", cause: ErrEvicted, revoke: func(t *testing.T, w *testWorker, _ Shard) func() {
			evicted := make(chan error, 1)
			go func() {
				_, err := w.Evict(context.Background(), 0, "contention")
				evicted <- err
			}()
			return func() { require.NoError(t, receiveWithin(t, evicted, "the eviction")) }
		}},
		{name: "stop", cause: ErrStopped, revoke: func(t *testing.T, w *testWorker, _ Shard) func() {
			stopped := make(chan error, 1)
			go func() { stopped <- w.Stop(context.Background()) }()
			return func() { require.NoError(t, receiveWithin(t, stopped, "the stop")) }
		}},
		{name: "fail-stop", cause: injected, revoke: func(t *testing.T, w *testWorker, _ Shard) func() {
			w.FailStop(injected)
			return func() { w.waitStopped(t) }
		}},
		{name: "integrity failure", cause: ErrSealVerificationFailed, revoke: func(t *testing.T, w *testWorker, s Shard) func() {
			require.NoError(t, w.sims[0].FlipBit(w.sims[0].Allocations()[0].Handle, 3, 0))
			var ie *IntegrityError
			require.ErrorAs(t, w.Verify(context.Background(), s), &ie)
			return func() { w.waitStopped(t) }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newTestWorker(t, []int64{16 * MiB}, nil)
			s, l := w.sealLeased(t)
			before, err := l.View()
			require.NoError(t, err)
			buf := make([]byte, 16)
			_, err = before.ReadAt(buf, 0)
			require.NoError(t, err, "a view reads while the lease stands")

			wait := tt.revoke(t, w, s)
			select {
			case <-l.Revoked():
			case <-time.After(10 * time.Second):
				t.Fatalf("%s did not revoke the lease", tt.name)
			}
			err = l.Err()
			assert.ErrorIs(t, err, ErrRevoked)
			assert.ErrorIs(t, err, tt.cause)
			_, err = l.View()
			assert.ErrorIs(t, err, ErrRevoked, "View after revocation")
			assert.ErrorIs(t, err, tt.cause)
			_, err = l.DevicePointer()
			assert.ErrorIs(t, err, ErrRevoked, "DevicePointer after revocation, on a Sim too")
			assert.ErrorIs(t, err, tt.cause)
			_, err = before.ReadAt(buf, 0)
			assert.ErrorIs(t, err, ErrRevoked, "a view taken before reads no more")
			assert.ErrorIs(t, err, tt.cause)

			l.Release()
			assert.ErrorIs(t, l.Err(), tt.cause, "Release keeps the cause")
			wait()
			assert.Zero(t, w.sims[0].Outstanding(), "freed once the lease ended")
		})
	}
}

func TestReleasedLeaseRefusesItsMemory(t *testing.T) {
	w := newTestWorker(t, []int64{16 * MiB}, nil)
	_, l := w.sealLeased(t)
	view, err := l.View()
	require.NoError(t, err)
	l.Release()
	assert.NoError(t, l.Err(), "a released lease is not revoked")
	_, err = l.View()
	assert.ErrorIs(t, err, ErrInvalidInput)
	_, err = view.ReadAt(make([]byte, 1), 0)
	assert.ErrorIs(t, err, ErrInvalidInput, "a view of a released lease reads no more")
	assert.False(t, errors.Is(err, ErrRevoked))
}

// receiveWithin is the value ch delivers, failing the test if it takes
// longer than 10 seconds.
func receiveWithin(t *testing.T, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return", what)
		return nil
	}
}
