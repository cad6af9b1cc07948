package share

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrClosed means the client's connection closed.
var ErrClosed = errors.New("lease server connection closed")

// Client is a connection to a lease server. Its methods are safe for
// concurrent use; one goroutine it owns reads the server's messages, and
// Close stops it.
type Client struct {
	nc     *net.UnixConn
	worker string

	writeMu sync.Mutex
	mu      sync.Mutex
	next    int64
	waiting map[int64]chan message
	leases  map[uint64]*RemoteLease
	err     error // why the connection ended, once it has
	done    chan struct{}
}

// message is a server message with the descriptor it carried, if any.
type message struct {
	reply
	fd *os.File
}

// Dial connects to the lease server at path and says hello.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("share: %w", err)
	}
	c := &Client{nc: nc.(*net.UnixConn), waiting: map[int64]chan message{}, leases: map[uint64]*RemoteLease{}, done: make(chan struct{})}
	go c.read()
	v := Version
	m, err := c.call(ctx, request{Op: opHello, Version: &v})
	if err != nil {
		c.Close()
		return nil, err
	}
	c.worker = m.Worker
	return c, nil
}

// Worker is the worker ID the server named in its welcome.
func (c *Client) Worker() string { return c.worker }

// Shards lists the served shards.
func (c *Client) Shards(ctx context.Context) ([]ShardInfo, error) {
	m, err := c.call(ctx, request{Op: opList})
	if err != nil {
		return nil, err
	}
	return m.Shards, nil
}

// Status lists the served shards and the connected clients, with the
// leases each holds (this client among them).
func (c *Client) Status(ctx context.Context) ([]ShardInfo, []ClientInfo, error) {
	m, err := c.call(ctx, request{Op: opStatus})
	if err != nil {
		return nil, nil, err
	}
	return m.Shards, m.Clients, nil
}

// Acquire takes a lease on shard id, re-hashed first if verified.
func (c *Client) Acquire(ctx context.Context, id string, verified bool) (*RemoteLease, error) {
	m, err := c.call(ctx, request{Op: opAcquire, ID: &id, Verified: &verified})
	if err != nil {
		return nil, err
	}
	if m.fd == nil || m.Grant == nil {
		return nil, fmt.Errorf("share: a grant without a descriptor: %w", ErrFrame)
	}
	g := *m.Grant
	g.Lease = m.Lease
	l := &RemoteLease{Grant: g, client: c, file: m.fd, revoked: make(chan struct{})}
	c.mu.Lock()
	c.leases[g.Lease] = l
	c.mu.Unlock()
	return l, nil
}

// Close closes the connection: the server ends every lease it holds, and
// the client unmaps those it still held. (Release a revoked lease to unmap
// it.)
func (c *Client) Close() error {
	err := c.nc.Close()
	<-c.done
	c.mu.Lock()
	held := c.leases
	c.leases = map[uint64]*RemoteLease{}
	c.mu.Unlock()
	for _, l := range held {
		l.mu.Lock()
		l.ended = true
		l.unmapLocked()
		l.mu.Unlock()
	}
	return err
}

// call sends a request and waits for its reply; an error reply is an
// *Error.
func (c *Client) call(ctx context.Context, req request) (message, error) {
	ch := make(chan message, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return message{}, c.err
	}
	c.next++
	id := c.next
	req.Req = &id
	c.waiting[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiting, id)
		c.mu.Unlock()
	}()
	body, err := json.Marshal(req)
	if err != nil {
		return message{}, err
	}
	c.writeMu.Lock()
	err = writeFrame(c.nc, body, nil)
	c.writeMu.Unlock()
	if err != nil {
		return message{}, fmt.Errorf("share: %w", err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			<-c.done
			return message{}, c.err
		}
		if m.Op == opError {
			return m, &Error{Code: m.Code, Message: m.Message}
		}
		return m, nil
	case <-c.done:
		return message{}, c.err
	case <-ctx.Done():
		return message{}, ctx.Err()
	}
}

// read dispatches the server's messages until the connection ends.
func (c *Client) read() {
	r := newFrameReader(c.nc, true)
	var err error
	for {
		var body []byte
		body, err = readFrame(r)
		if err != nil {
			break
		}
		var m message
		if err = json.Unmarshal(body, &m.reply); err != nil {
			break
		}
		if fds := r.takeFDs(); len(fds) > 0 {
			m.fd = fds[0]
			for _, extra := range fds[1:] {
				extra.Close()
			}
		}
		c.dispatch(m)
	}
	c.mu.Lock()
	c.err = fmt.Errorf("share: %w: %w", ErrClosed, err)
	for _, l := range c.leases {
		l.revoke(ReasonStopped, "the connection closed")
	}
	for _, ch := range c.waiting {
		close(ch)
	}
	c.waiting = map[int64]chan message{}
	c.mu.Unlock()
	c.nc.Close()
	close(c.done)
}

// dispatch hands a reply to its caller, or applies a revoke.
func (c *Client) dispatch(m message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.Op == opRevoke {
		if l := c.leases[m.Lease]; l != nil {
			delete(c.leases, m.Lease)
			l.revoke(m.Reason, m.Message)
		}
		return
	}
	if m.Req != nil {
		if ch := c.waiting[*m.Req]; ch != nil {
			ch <- m
			return
		}
	}
	if m.fd != nil {
		m.fd.Close() // nobody waits for it any more
	}
}

// RemoteLease is a lease held over a connection: the grant, and the
// descriptor of the shard's memory.
type RemoteLease struct {
	Grant
	client *Client

	mu      sync.Mutex
	file    *os.File
	mapping []byte
	revoked chan struct{}
	reason  string
	message string
	ended   bool
}

// Map maps the shard's memory read-only (a memfd grant) and returns its
// bytes. The mapping is valid until Release; stop using it once Revoked
// closes.
func (l *RemoteLease) Map() ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mapping != nil {
		return l.mapping[l.Offset : l.Offset+l.Size], nil
	}
	if l.file == nil {
		return nil, fmt.Errorf("share: lease %d: released", l.Lease)
	}
	if l.Handle != "memfd" {
		return nil, fmt.Errorf("share: lease %d: a %s grant is mapped through CUDA, not mmap", l.Lease, l.Handle)
	}
	m, err := unix.Mmap(int(l.file.Fd()), 0, int(l.MapSize), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("share: map lease %d: %w", l.Lease, err)
	}
	l.mapping = m
	return m[l.Offset : l.Offset+l.Size], nil
}

// DupFile returns a duplicate of the grant's descriptor, which the caller
// owns and closes: how a cuda-vmm-fd grant is handed to the CUDA driver
// (cuda/driver's Import), which Map cannot map. It fails once the lease is
// released.
func (l *RemoteLease) DupFile() (*os.File, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file == nil {
		return nil, fmt.Errorf("share: lease %d: released", l.Lease)
	}
	fd, err := unix.FcntlInt(l.file.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("share: lease %d: duplicate its descriptor: %w", l.Lease, err)
	}
	return os.NewFile(uintptr(fd), l.Handle), nil
}

// Revoked closes once the server revokes the lease or the connection ends.
func (l *RemoteLease) Revoked() <-chan struct{} { return l.revoked }

// Reason is why the lease was revoked (integrity, evicted, stopped,
// device) and the server's message; empty while it stands.
func (l *RemoteLease) Reason() (reason, message string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reason, l.message
}

// Release ends the lease (unless it was revoked) and unmaps it. It is
// idempotent.
func (l *RemoteLease) Release(ctx context.Context) error {
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		return nil
	}
	l.ended = true
	l.unmapLocked()
	l.mu.Unlock()
	select {
	case <-l.revoked:
		return nil // already over
	default:
	}
	id := l.Lease
	_, err := l.client.call(ctx, request{Op: opRelease, Lease: &id})
	l.client.mu.Lock()
	delete(l.client.leases, id)
	l.client.mu.Unlock()
	return err
}

// revoke marks the lease revoked; the client's lock is held.
func (l *RemoteLease) revoke(reason, message string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.revoked:
		return
	default:
	}
	l.reason, l.message = reason, message
	close(l.revoked)
}

func (l *RemoteLease) unmapLocked() {
	if l.mapping != nil {
		_ = unix.Munmap(l.mapping)
		l.mapping = nil
	}
	if l.file != nil {
		l.file.Close()
		l.file = nil
	}
}
