package supervisor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/cuda/cudatest"
	"github.com/vramseal/vramseal/internal/testwait"
)

// TestPeerLeaseSharesTheSealedBytesAndRecordsItsLife grants a lease to a
// peer, maps the shared descriptor as the peer would, and checks the bytes
// hash to the shard's digest and that grant and end are recorded.
func TestPeerLeaseSharesTheSealedBytesAndRecordsItsLife(t *testing.T) {
	w := newRigWorker(t, RigConfig{Shareable: true}, nil)
	ctx := context.Background()
	data := cudatest.Pattern(7, 300_001)
	s, err := w.Seal(ctx, SealRequest{ID: "w", Size: int64(len(data)), Data: bytes.NewReader(data)})
	require.NoError(t, err)

	found, err := w.Lookup("w")
	require.NoError(t, err)
	assert.Equal(t, s.Digest, found.Digest, "Lookup finds the sealed record")
	_, err = w.Lookup("nope")
	assert.ErrorIs(t, err, ErrUnknownShard)

	peer := Peer{PID: 4242, UID: 1000, GID: 1001}
	l, err := w.Acquire(ctx, found, Verified(), ForPeer(peer))
	require.NoError(t, err)
	shared, err := l.Share()
	require.NoError(t, err)
	defer shared.File.Close()
	assert.Equal(t, cuda.ShareMemfd, shared.Kind)
	m, err := unix.Mmap(int(shared.File.Fd()), 0, int(shared.MapSize), unix.PROT_READ, unix.MAP_SHARED)
	require.NoError(t, err)
	defer unix.Munmap(m)
	sum := sha256.Sum256(m[shared.Offset : shared.Offset+s.Size])
	assert.Equal(t, s.Digest, hex.EncodeToString(sum[:]), "the shared bytes hash to the shard's digest")

	require.NoError(t, l.End(LeaseReleased))
	require.NoError(t, l.End(LeaseDisconnected), "a second End is a no-op")
	_, err = l.Share()
	assert.ErrorIs(t, err, ErrInvalidInput, "Share after the lease ended")

	granted, ended := w.events(audit.EventLeaseGranted), w.events(audit.EventLeaseEnded)
	require.Len(t, granted, 1)
	require.Len(t, ended, 1, "one LeaseEnded however many Ends")
	for _, r := range []audit.Record{granted[0], ended[0]} {
		assert.Equal(t, "w", r.Fields["shard_id"])
		assert.EqualValues(t, l.ID(), r.Fields["lease"])
		assert.EqualValues(t, 4242, r.Fields["peer_pid"])
		assert.EqualValues(t, 1000, r.Fields["peer_uid"])
		assert.EqualValues(t, 1001, r.Fields["peer_gid"])
	}
	assert.Equal(t, true, granted[0].Fields["verified"])
	assert.Equal(t, "released", ended[0].Fields["ended"])
}

// TestRevokedPeerLeaseRecordsTheCause ends a revoked peer lease and checks
// its record says revoked and why.
func TestRevokedPeerLeaseRecordsTheCause(t *testing.T) {
	w := newRigWorker(t, RigConfig{Shareable: true}, nil)
	ctx := context.Background()
	s, err := w.Seal(ctx, SealRequest{ID: "w", Size: 4096, Data: bytes.NewReader(cudatest.Pattern(1, 4096))})
	require.NoError(t, err)
	l, err := w.Acquire(ctx, s, ForPeer(Peer{PID: 1}))
	require.NoError(t, err)
	evicted := make(chan error, 1)
	go func() {
		_, err := w.Evict(ctx, 0, "contention")
		evicted <- err
	}()
	testwait.Receive(t, l.Revoked(), "the revocation")
	require.NoError(t, l.End(LeaseRevoked))
	require.NoError(t, receiveWithin(t, evicted, "the eviction"))
	ended := w.events(audit.EventLeaseEnded)
	require.Len(t, ended, 1)
	assert.Equal(t, "revoked", ended[0].Fields["ended"])
	assert.Contains(t, ended[0].Fields["cause"], "evicted")
}

// TestShareNeedsAShareableDevice checks a lease on a device not made
// shareable refuses to share.
func TestShareNeedsAShareableDevice(t *testing.T) {
	w := newTestWorker(t, []int64{16 * MiB}, nil)
	_, l := w.sealLeased(t)
	defer l.Release()
	_, err := l.Share()
	assert.ErrorIs(t, err, ErrInvalidInput)
}
