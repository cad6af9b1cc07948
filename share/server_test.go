package share_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/internal/testwait"
	"github.com/vramseal/vramseal/share"
	"github.com/vramseal/vramseal/supervisor"
)

// TestAClientWrittenFromTheDocumentMapsTheSealedBytes speaks the protocol
// with nothing but its document: list, a verified acquire, the bytes
// through the descriptor hash to the digest, no way to write through it,
// release; and the audit log names the lease's life.
func TestAClientWrittenFromTheDocumentMapsTheSealedBytes(t *testing.T) {
	s := serve(t, nil)
	info, err := os.Stat(s.path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o660), info.Mode().Perm(), "socket mode")

	c := helloRaw(t, s.path)
	c.send(map[string]any{"op": "list", "req": 2})
	m, _ := c.recv()
	require.Equal(t, "shards", m["op"])
	shards := m["shards"].([]any)
	require.Len(t, shards, 1)
	assert.Equal(t, s.shard.Digest, shards[0].(map[string]any)["digest"])

	c.send(map[string]any{"op": "acquire", "req": 3, "id": "w", "verified": true})
	g, fd := c.recv()
	require.Equal(t, "grant", g["op"], "%v", g)
	require.NotNil(t, fd, "the grant carries a descriptor")
	assert.Equal(t, "memfd", g["handle"])
	assert.EqualValues(t, 3, g["req"])
	offset, size, mapSize := int64(g["offset"].(float64)), int64(g["size"].(float64)), int(g["map_size"].(float64))
	mapping, err := unix.Mmap(int(fd.Fd()), 0, mapSize, unix.PROT_READ, unix.MAP_SHARED)
	require.NoError(t, err)
	defer unix.Munmap(mapping)
	sum := sha256.Sum256(mapping[offset : offset+size])
	assert.Equal(t, s.shard.Digest, hex.EncodeToString(sum[:]), "the mapped bytes hash to the shard's digest")
	assert.Equal(t, s.shard.Digest, g["digest"])

	_, err = unix.Mmap(int(fd.Fd()), 0, mapSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	assert.Error(t, err, "a writable shared mapping")
	assert.Error(t, unix.Mprotect(mapping, unix.PROT_READ|unix.PROT_WRITE), "mprotect to write")
	_, err = unix.Pwrite(int(fd.Fd()), []byte{1}, offset)
	assert.Error(t, err, "write(2)")

	lease := g["lease"]
	c.send(map[string]any{"op": "release", "req": 4, "lease": lease})
	m, _ = c.recv()
	assert.Equal(t, "released", m["op"], "%v", m)
	assert.Equal(t, lease, m["lease"])

	granted, ended := s.events(audit.EventLeaseGranted), s.events(audit.EventLeaseEnded)
	require.Len(t, granted, 1)
	require.Len(t, ended, 1)
	assert.EqualValues(t, os.Getpid(), granted[0].Fields["peer_pid"], "the peer, from SO_PEERCRED")
	assert.EqualValues(t, os.Getuid(), granted[0].Fields["peer_uid"])
	assert.Equal(t, true, granted[0].Fields["verified"])
	assert.Equal(t, "released", ended[0].Fields["ended"])
}

// TestBadInputGetsAClearErrorAndTheServerGoesOn sends each kind of bad
// request after hello and checks each gets an error with its code, on a
// connection that still answers.
func TestBadInputGetsAClearErrorAndTheServerGoesOn(t *testing.T) {
	s := serve(t, nil)
	other := helloRaw(t, s.path)
	other.send(map[string]any{"op": "acquire", "req": 2, "id": "w"})
	g, _ := other.recv()
	require.Equal(t, "grant", g["op"])

	c := helloRaw(t, s.path)
	for _, tc := range []struct {
		name, body, code string
	}{
		{"not JSON", `{"op":`, share.CodeBadRequest},
		{"not an object", `[1,2]`, share.CodeBadRequest},
		{"no op", `{"req":5}`, share.CodeBadRequest},
		{"unknown op", `{"op":"format","req":5}`, share.CodeBadRequest},
		{"a number for the id", `{"op":"acquire","id":7,"req":5}`, share.CodeBadRequest},
		{"no id", `{"op":"acquire","req":5}`, share.CodeBadRequest},
		{"a string for the lease", `{"op":"release","lease":"1","req":5}`, share.CodeBadRequest},
		{"an unknown shard", `{"op":"acquire","id":"nope","req":5}`, share.CodeUnknownShard},
		{"another client's lease", fmt.Sprintf(`{"op":"release","lease":%v,"req":5}`, g["lease"]), share.CodeUnknownLease},
		{"hello again", `{"op":"hello","version":1,"req":5}`, share.CodeBadRequest},
	} {
		c.sendRaw([]byte(tc.body))
		m, _ := c.recv()
		assert.Equal(t, "error", m["op"], tc.name)
		assert.Equal(t, tc.code, m["code"], "%s: %v", tc.name, m)
		assert.NotEmpty(t, m["message"], tc.name)
	}
	c.send(map[string]any{"op": "list", "req": 9})
	m, _ := c.recv()
	assert.Equal(t, "shards", m["op"], "the connection still serves")
	assert.Len(t, s.events(audit.EventLeaseEnded), 0, "another client's lease was not released")
}

// TestFramingAndVersionErrorsCloseTheConnection checks the errors that end
// a connection do, with the code that says why.
func TestFramingAndVersionErrorsCloseTheConnection(t *testing.T) {
	s := serve(t, nil)
	for _, tc := range []struct {
		name string
		send func(c *rawClient)
		code string
	}{
		{"a length of 0", func(c *rawClient) { c.conn.Write([]byte{0, 0, 0, 0}) }, share.CodeBadFrame},
		{"a length over 16 MiB", func(c *rawClient) {
			c.conn.Write(binary.BigEndian.AppendUint32(nil, share.MaxFrame+1))
		}, share.CodeBadFrame},
		{"no hello first", func(c *rawClient) { c.send(map[string]any{"op": "list"}) }, share.CodeVersion},
		{"version 2", func(c *rawClient) { c.send(map[string]any{"op": "hello", "version": 2}) }, share.CodeVersion},
		{"not JSON first", func(c *rawClient) { c.sendRaw([]byte("hello")) }, share.CodeVersion},
	} {
		c := dialRaw(t, s.path)
		tc.send(c)
		m, _ := c.recv()
		assert.Equal(t, tc.code, m["code"], "%s: %v", tc.name, m)
		assert.True(t, c.closed(), "%s: the server closes the connection", tc.name)
	}
	truncated := helloRaw(t, s.path)
	truncated.conn.Write(append(binary.BigEndian.AppendUint32(nil, 100), `{"op"`...))
	truncated.conn.CloseWrite()
	m, _ := truncated.recv()
	assert.Equal(t, share.CodeBadFrame, m["code"], "a frame cut short: %v", m)
	helloRaw(t, s.path) // and the server still serves
}

// TestDescriptorsAClientSendsAreClosed sends descriptors with requests and
// checks the server keeps none of them.
func TestDescriptorsAClientSendsAreClosed(t *testing.T) {
	s := serve(t, nil)
	c := helloRaw(t, s.path)
	before := openFiles(t)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	for i := range 20 {
		body := fmt.Appendf(nil, `{"op":"list","req":%d}`, i+2)
		frame := append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
		_, _, err := c.conn.WriteMsgUnix(frame, syscall.UnixRights(int(r.Fd()), int(w.Fd())), nil)
		require.NoError(t, err)
		m, _ := c.recv()
		require.Equal(t, "shards", m["op"])
	}
	r.Close()
	w.Close()
	assert.Equal(t, before, openFiles(t), "the server closed every descriptor it was sent")
}

// TestARevocationReachesTheClientBeforeTheWorkerStops plants a bit flip,
// verifies, and checks the client hears "integrity" while the runtime is
// still stopping, and that the audit log says the lease was revoked.
func TestARevocationReachesTheClientBeforeTheWorkerStops(t *testing.T) {
	s := serve(t, nil)
	ctx := context.Background()
	c, err := share.Dial(ctx, s.path)
	require.NoError(t, err)
	defer c.Close()
	l, err := c.Acquire(ctx, "w", true)
	require.NoError(t, err)
	b, err := l.Map()
	require.NoError(t, err)
	require.Equal(t, s.data[:64], b[:64])

	require.NoError(t, s.rig.Sims[0].FlipBit(s.rig.Sims[0].Allocations()[0].Handle, 1000, 2))
	assert.Equal(t, s.data[1000]^4, b[1000], "the client's mapping is the sealed memory itself")
	err = s.rig.Verify(ctx, s.shard)
	require.ErrorIs(t, err, supervisor.ErrSealVerificationFailed)

	testwait.Receive(t, l.Revoked(), "the revocation")
	reason, _ := l.Reason()
	assert.Equal(t, share.ReasonIntegrity, reason)
	testwait.Receive(t, s.rig.Done(), "the fail-stop")
	require.NoError(t, l.Release(ctx))
	assert.Equal(t, int64(1), s.server.Stats().Revocations, "the revoke was written")

	// The server ends the lease only once the revoke is written, and the
	// memory is freed only once the lease ends: so the trail shows the end
	// of the lease before the free.
	ended, freed := -1, -1
	for i, r := range s.rig.Audit.Records() {
		switch {
		case r.Event == audit.EventLeaseEnded && r.Fields["ended"] == "revoked":
			ended = i
		case r.Event == audit.EventVramDeallocated && r.Fields["shard_id"] == "w":
			freed = i
		}
	}
	require.GreaterOrEqual(t, ended, 0, "a LeaseEnded record, revoked")
	require.GreaterOrEqual(t, freed, 0, "the shard's VramDeallocated record")
	assert.Less(t, ended, freed, "the client was told before the memory was freed")
}

// TestADisconnectedClientsLeaseEnds closes a client holding a lease and
// checks the lease ends as disconnected and Free then succeeds.
func TestADisconnectedClientsLeaseEnds(t *testing.T) {
	s := serve(t, nil)
	ctx := context.Background()
	c, err := share.Dial(ctx, s.path)
	require.NoError(t, err)
	_, err = c.Acquire(ctx, "w", false)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	free, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, s.rig.Free(free, s.shard), "the shard is freed once its client went away")
	ended := s.events(audit.EventLeaseEnded)
	require.Len(t, ended, 1)
	assert.Equal(t, "disconnected", ended[0].Fields["ended"])
	assert.Zero(t, s.server.Stats().Leases)
}

// TestAClientThatNeverReadsCannotDelayStop has a client hold a lease and
// read nothing, and checks Stop finishes anyway.
func TestAClientThatNeverReadsCannotDelayStop(t *testing.T) {
	s := serve(t, func(c *share.Config) { c.WriteTimeout = 200 * time.Millisecond })
	c := helloRaw(t, s.path)
	c.send(map[string]any{"op": "acquire", "req": 2, "id": "w"})
	list := append(binary.BigEndian.AppendUint32(nil, 13), `{"op":"list"}`...)
	for range 500 { // replies it never reads; the server may drop it meanwhile
		if _, err := c.conn.Write(list); err != nil {
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, s.rig.Stop(ctx), "Stop, while a client that never reads holds a lease")
}

// TestOneClientTooManyIsRefusedAtOnce checks the limit on clients.
func TestOneClientTooManyIsRefusedAtOnce(t *testing.T) {
	s := serve(t, func(c *share.Config) { c.MaxClients = 2 })
	helloRaw(t, s.path)
	helloRaw(t, s.path)
	c := dialRaw(t, s.path)
	m, _ := c.recv()
	assert.Equal(t, share.CodeBusy, m["code"], "%v", m)
	assert.True(t, c.closed())
}

// TestThousandsOfConnectionsLeakNothing connects and disconnects many
// times, some holding leases, and checks no descriptor or lease is left.
func TestThousandsOfConnectionsLeakNothing(t *testing.T) {
	s := serve(t, nil)
	before := openFiles(t)
	for i := range 2000 {
		c, err := net.Dial("unix", s.path)
		require.NoError(t, err)
		if i%10 == 0 {
			rc := &rawClient{t: t, conn: c.(*net.UnixConn)}
			rc.send(map[string]any{"op": "hello", "version": 1})
			rc.recv()
			rc.send(map[string]any{"op": "acquire", "id": "w"})
			_, fd := rc.recv()
			fd.Close()
		}
		c.Close()
	}
	require.Eventually(t, func() bool { return s.server.Stats().Clients == 0 && s.server.Stats().Leases == 0 },
		30*time.Second, 10*time.Millisecond, "every connection to end")
	// A connection's writer closes the descriptors it sent, and its own,
	// as it ends, which may be just after the counters above drop.
	assert.Eventually(t, func() bool { return openFiles(t) == before }, 30*time.Second, 10*time.Millisecond,
		"descriptors after 2,000 connections: %d before", before)
	assert.Len(t, s.events(audit.EventLeaseEnded), 200)
}

// TestASocketIsTakenOnlyFromTheDead checks a live server's socket is
// refused and a dead one's replaced.
func TestASocketIsTakenOnlyFromTheDead(t *testing.T) {
	s := serve(t, nil)
	_, err := share.Listen(share.Config{Runtime: s.rig.Runtime, Path: s.path})
	assert.ErrorIs(t, err, share.ErrSocketInUse)

	stale := s.path + ".stale"
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	require.NoError(t, err)
	l.SetUnlinkOnClose(false)
	l.Close()
	again, err := share.Listen(share.Config{Runtime: s.rig.Runtime, Path: stale})
	require.NoError(t, err, "a dead server's socket is replaced")
	require.NoError(t, again.Close())

	plain := s.path + ".file"
	require.NoError(t, os.WriteFile(plain, nil, 0o600))
	_, err = share.Listen(share.Config{Runtime: s.rig.Runtime, Path: plain})
	assert.ErrorContains(t, err, "not a socket")
}

// TestTheGoClientListsAcquiresAndReleases drives the Go client.
func TestTheGoClientListsAcquiresAndReleases(t *testing.T) {
	s := serve(t, nil)
	ctx := context.Background()
	c, err := share.Dial(ctx, s.path)
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, "rig", c.Worker())
	shards, err := c.Shards(ctx)
	require.NoError(t, err)
	require.Len(t, shards, 1)
	_, err = c.Acquire(ctx, "nope", false)
	var se *share.Error
	require.True(t, errors.As(err, &se))
	assert.Equal(t, share.CodeUnknownShard, se.Code)
	l, err := c.Acquire(ctx, "w", false)
	require.NoError(t, err)
	assert.Equal(t, int64(1), s.server.Stats().Leases)
	require.NoError(t, l.Release(ctx))
	require.NoError(t, l.Release(ctx), "Release twice")
	assert.Equal(t, int64(0), s.server.Stats().Leases)
	assert.Equal(t, int64(1), s.server.Stats().Grants)
}

// TestAnUnshareableGrantIsRecordedAsNeverHandedOver serves a Sim that
// cannot share memory: the client is told unshareable, and the trail says
// the lease ended unshared, and why, not that the client released it.
func TestAnUnshareableGrantIsRecordedAsNeverHandedOver(t *testing.T) {
	s := serveOn(t, supervisor.RigConfig{}, nil)
	ctx := context.Background()
	c, err := share.Dial(ctx, s.path)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Acquire(ctx, "w", false)
	var se *share.Error
	require.True(t, errors.As(err, &se), "%v", err)
	assert.Equal(t, share.CodeUnshareable, se.Code)
	assert.Equal(t, int64(0), s.server.Stats().Leases)

	ended := s.events(audit.EventLeaseEnded)
	require.Len(t, ended, 1)
	assert.Equal(t, "unshared", ended[0].Fields["ended"])
	assert.Contains(t, ended[0].Fields["cause"], "does not share memory with other processes")
}

// TestASilentClientIsClosedAfterTheHelloTimeout connects and says nothing:
// the server closes the connection and frees its slot.
func TestASilentClientIsClosedAfterTheHelloTimeout(t *testing.T) {
	s := serve(t, func(c *share.Config) { c.HelloTimeout = 100 * time.Millisecond; c.MaxClients = 1 })
	silent := dialRaw(t, s.path)
	assert.True(t, silent.closed(), "the server closes a connection that never says hello")
	require.Eventually(t, func() bool { return s.server.Stats().Clients == 0 }, 30*time.Second, 10*time.Millisecond, "the silent client's slot to free")
	helloRaw(t, s.path) // the one slot serves again
}
