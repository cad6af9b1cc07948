package share

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/vramseal/vramseal/supervisor"
)

// outFrame is a frame queued to a client: its body, a descriptor to pass
// with it (closed once sent or given up), and done, told whether it was
// written.
type outFrame struct {
	body []byte
	fd   *os.File
	done func(sent bool)
}

// conn is one client's connection: the goroutine that reads and answers
// its requests (serve), the one that writes to it (write), and a goroutine
// per lease it holds, watching for the lease's revocation.
type conn struct {
	s    *Server
	nc   *net.UnixConn
	peer supervisor.Peer
	ctx  context.Context // ends when the connection closes
	stop context.CancelFunc

	out       chan outFrame
	closing   chan struct{}
	closeOnce sync.Once

	mu         sync.Mutex
	leases     map[uint64]*heldLease
	writerDone bool // no frame may be queued any more
	dropped    bool // closed for not keeping up
}

// heldLease is a lease the connection holds; gone closes once it leaves
// the connection (released, revoked, or the connection closed), which
// stops its watcher.
type heldLease struct {
	lease *supervisor.Lease
	gone  chan struct{}
}

func newConn(s *Server, nc *net.UnixConn, peer supervisor.Peer) *conn {
	ctx, stop := context.WithCancel(context.Background())
	return &conn{s: s, nc: nc, peer: peer, ctx: ctx, stop: stop,
		out: make(chan outFrame, s.cfg.SendQueue), closing: make(chan struct{}), leases: map[uint64]*heldLease{}}
}

// close closes the connection, once; serve then ends its leases.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.stop()
		close(c.closing)
		c.nc.Close()
	})
}

// drop closes a connection that did not keep up with what it was sent.
func (c *conn) drop() {
	c.mu.Lock()
	first := !c.dropped
	c.dropped = true
	c.mu.Unlock()
	if first {
		c.s.drops.Add(1)
		c.s.cfg.Logger.Warn("lease server dropped a client that did not keep up", "pid", c.peer.PID, "uid", c.peer.UID)
	}
	c.close()
}

// serve reads requests until the client leaves or breaks the protocol,
// then ends every lease the connection still holds.
func (c *conn) serve() {
	defer c.s.forget(c)
	defer c.endAll()
	defer c.close()
	r := newFrameReader(c.nc, false)
	said := false
	_ = c.nc.SetReadDeadline(time.Now().Add(c.s.cfg.HelloTimeout))
	for {
		body, err := readFrame(r)
		if err != nil {
			if errors.Is(err, ErrFrame) {
				c.last(nil, CodeBadFrame, err.Error())
			}
			return
		}
		var req request
		if err := json.Unmarshal(body, &req); err != nil || req.Op == "" {
			if !said {
				c.last(nil, CodeVersion, "the first message must be {\"op\":\"hello\",\"version\":1}")
				return
			}
			c.fail(req.Req, CodeBadRequest, badRequest(err))
			continue
		}
		if !said {
			if req.Op != opHello || req.Version == nil || *req.Version != Version {
				c.last(req.Req, CodeVersion, fmt.Sprintf("this server speaks protocol version %d; begin with {\"op\":\"hello\",\"version\":%d}", Version, Version))
				return
			}
			said = true
			_ = c.nc.SetReadDeadline(time.Time{})
			c.send(reply{Op: opWelcome, Req: req.Req, Version: Version, Worker: c.s.cfg.WorkerID}, nil)
			continue
		}
		c.handle(req)
	}
}

// badRequest says why a frame is not a request.
func badRequest(err error) string {
	if err == nil {
		return "the message has no op"
	}
	return "not a request (a JSON object with a string op and fields of the documented types): " + err.Error()
}

// handle answers one request after hello.
func (c *conn) handle(req request) {
	switch req.Op {
	case opList:
		shards, err := c.shards()
		if err != nil {
			c.fail(req.Req, errorCode(err), err.Error())
			return
		}
		c.send(reply{Op: opShards, Req: req.Req, Shards: shards}, nil)
	case opStatus:
		shards, err := c.shards()
		if err != nil {
			c.fail(req.Req, errorCode(err), err.Error())
			return
		}
		c.send(reply{Op: opStatus, Req: req.Req, Shards: shards, Clients: c.s.clients()}, nil)
	case opAcquire:
		if req.ID == nil {
			c.fail(req.Req, CodeBadRequest, "acquire needs a string id")
			return
		}
		c.acquire(req.Req, *req.ID, req.Verified != nil && *req.Verified)
	case opRelease:
		if req.Lease == nil {
			c.fail(req.Req, CodeBadRequest, "release needs an integer lease")
			return
		}
		h := c.take(*req.Lease)
		if h == nil {
			c.fail(req.Req, CodeUnknownLease, fmt.Sprintf("this connection holds no lease %d", *req.Lease))
			return
		}
		c.end(h, supervisor.LeaseReleased)
		c.send(reply{Op: opReleased, Req: req.Req, Lease: *req.Lease}, nil)
	case opHello:
		c.fail(req.Req, CodeBadRequest, "hello was already said")
	default:
		c.fail(req.Req, CodeBadRequest, fmt.Sprintf("unknown op %+q", req.Op))
	}
}

// shards lists the runtime's live shards.
func (c *conn) shards() ([]ShardInfo, error) {
	ss, err := c.s.cfg.Runtime.Shards(c.ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ShardInfo, 0, len(ss))
	for _, s := range ss {
		out = append(out, ShardInfo{ID: s.ID, Device: s.Device, Size: s.Size, Digest: s.Digest, Tensors: orEmpty(s.Tensors)})
	}
	return out, nil
}

// acquire grants the client a lease on shard id, verified first if asked,
// and sends the grant with the memory's descriptor; a watcher then tells
// the client if the lease is revoked.
func (c *conn) acquire(reqID *int64, id string, verified bool) {
	rt := c.s.cfg.Runtime
	shard, err := rt.Lookup(id)
	if err != nil {
		c.fail(reqID, errorCode(err), err.Error())
		return
	}
	opts := []supervisor.AcquireOption{supervisor.ForPeer(c.peer)}
	if verified {
		opts = append(opts, supervisor.Verified())
	}
	l, err := rt.Acquire(c.ctx, shard, opts...)
	if err != nil {
		c.fail(reqID, errorCode(err), err.Error())
		return
	}
	shared, err := l.Share()
	if err != nil {
		if l.Err() != nil {
			c.logEnd(l.End(supervisor.LeaseRevoked))
			c.fail(reqID, CodeStopped, err.Error())
			return
		}
		c.logEnd(l.EndUnshared(err))
		c.fail(reqID, CodeUnshareable, err.Error())
		return
	}
	h := &heldLease{lease: l, gone: make(chan struct{})}
	c.mu.Lock()
	c.leases[l.ID()] = h
	c.mu.Unlock()
	c.s.leases.Add(1)
	c.s.grants.Add(1)
	g := &Grant{
		Lease: l.ID(), ID: shard.ID, Size: shard.Size, Digest: shard.Digest, ChunkSize: shard.ChunkSize,
		Handle: string(shared.Kind), Offset: shared.Offset, MapSize: shared.MapSize, DeviceUUID: l.DeviceUUID(),
		Verified: verified, Tensors: orEmpty(shard.Tensors),
	}
	c.send(reply{Op: opGrant, Req: reqID, Grant: g, Lease: l.ID()}, shared.File)
	c.s.wg.Go(func() {
		select {
		case <-l.Revoked():
			c.revoked(l.ID())
		case <-h.gone:
		}
	})
}

// revoked tells the client its lease was revoked and, once the message is
// written (or the connection is given up), ends the lease: only then may
// the runtime free the memory.
func (c *conn) revoked(id uint64) {
	h := c.take(id)
	if h == nil {
		return // released or disconnected meanwhile
	}
	cause := h.lease.Err()
	body, _ := json.Marshal(reply{Op: opRevoke, Lease: id, Reason: revokeReason(cause), Message: cause.Error()})
	queued := c.enqueue(outFrame{body: body, done: func(sent bool) {
		how := supervisor.LeaseRevoked
		if sent {
			c.s.revocations.Add(1)
		} else {
			how = supervisor.LeaseDropped
		}
		c.end(h, how)
	}})
	if !queued {
		c.end(h, supervisor.LeaseDropped)
	}
}

// take removes lease id from the connection, if it holds it.
func (c *conn) take(id uint64) *heldLease {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.leases[id]
	if h != nil {
		delete(c.leases, id)
		close(h.gone)
	}
	return h
}

// endAll ends every lease the closed connection still holds.
func (c *conn) endAll() {
	c.mu.Lock()
	how := supervisor.LeaseDisconnected
	if c.dropped {
		how = supervisor.LeaseDropped
	}
	held := make([]*heldLease, 0, len(c.leases))
	for id, h := range c.leases {
		delete(c.leases, id)
		close(h.gone)
		held = append(held, h)
	}
	c.mu.Unlock()
	for _, h := range held {
		c.end(h, how)
	}
}

// end ends a lease that left the connection.
func (c *conn) end(h *heldLease, how supervisor.LeaseEnd) {
	c.logEnd(h.lease.End(how))
	c.s.leases.Add(-1)
}

func (c *conn) logEnd(err error) {
	if err != nil {
		c.s.cfg.Logger.Error("a lease's end was not recorded", "err", err)
	}
}

// leaseIDs lists the leases the connection holds.
func (c *conn) leaseIDs() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]uint64, 0, len(c.leases))
	for id := range c.leases {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// send queues a reply; a client whose queue is full is dropped.
func (c *conn) send(r reply, fd *os.File) {
	body, err := json.Marshal(r)
	if err != nil {
		c.s.cfg.Logger.Error("lease server could not encode a reply", "op", r.Op, "err", err)
		return
	}
	if !c.enqueue(outFrame{body: body, fd: fd}) {
		c.drop()
	}
}

// fail answers a request with an error; the connection goes on.
func (c *conn) fail(reqID *int64, code, message string) {
	c.send(reply{Op: opError, Req: reqID, Code: code, Message: message}, nil)
}

// last sends a final error and waits, within the write timeout, for it to
// be written before the connection closes.
func (c *conn) last(reqID *int64, code, message string) {
	body, _ := json.Marshal(reply{Op: opError, Req: reqID, Code: code, Message: message})
	written := make(chan struct{})
	if !c.enqueue(outFrame{body: body, done: func(bool) { close(written) }}) {
		return
	}
	select {
	case <-written:
	case <-time.After(2 * c.s.cfg.WriteTimeout):
	}
}

// enqueue queues f for the writer without waiting; false if the queue is
// full or the writer has stopped (f's descriptor is then closed, and done
// not called).
func (c *conn) enqueue(f outFrame) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.writerDone {
		select {
		case c.out <- f:
			return true
		default:
		}
	}
	if f.fd != nil {
		f.fd.Close()
	}
	return false
}

// write writes queued frames, each within the write timeout, until the
// connection closes; a frame it cannot write in time drops the connection. Frames
// still queued then are given up.
func (c *conn) write() {
	defer func() {
		c.mu.Lock()
		c.writerDone = true
		c.mu.Unlock()
		for {
			select {
			case f := <-c.out:
				finish(f, false)
			default:
				return
			}
		}
	}()
	for {
		select {
		case f := <-c.out:
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
			err := writeFrame(c.nc, f.body, f.fd)
			finish(f, err == nil)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.drop()
				return
			}
			if err != nil {
				c.close() // the client went away
				return
			}
		case <-c.closing:
			return
		}
	}
}

// finish closes a frame's descriptor and tells its done.
func finish(f outFrame, sent bool) {
	if f.fd != nil {
		f.fd.Close()
	}
	if f.done != nil {
		f.done(sent)
	}
}

// orEmpty is ts, or an empty list for JSON's sake.
func orEmpty(ts []supervisor.Tensor) []supervisor.Tensor {
	if ts == nil {
		return []supervisor.Tensor{}
	}
	return ts
}
