package share

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vramseal/vramseal/supervisor"
)

// Defaults of Config.
const (
	DefaultMaxClients = 256
	DefaultSendQueue  = 64
	// DefaultWriteTimeout bounds one frame's write to a client that does
	// not read: then the connection is dropped.
	DefaultWriteTimeout = 2 * time.Second
	// DefaultHelloTimeout bounds how long a new connection may take to say
	// hello, so that silent ones do not hold client slots.
	DefaultHelloTimeout = 10 * time.Second
)

// Config configures a lease server.
type Config struct {
	// Runtime is the runtime whose shards are served; its devices must be
	// shareable (a Sim with SimConfig.Shareable) for grants to succeed.
	Runtime *supervisor.Runtime
	// Path is the socket's path (see ListenSocket); unused when Listener
	// is set.
	Path string
	// Listener, if set, is a socket from ListenSocket to serve on; the
	// server closes it.
	Listener *net.UnixListener
	// WorkerID is what welcome names the worker.
	WorkerID string
	// AllowUIDs and AllowGIDs are the peers allowed besides the server's
	// own user and root.
	AllowUIDs, AllowGIDs []int
	// MaxClients bounds the connections; one more is refused with busy.
	// 0 means DefaultMaxClients.
	MaxClients int
	// SendQueue bounds the frames queued to one client; a client that lets
	// it overflow is dropped. 0 means DefaultSendQueue.
	SendQueue int
	// WriteTimeout bounds one frame's write; 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// HelloTimeout bounds the wait for a new connection's hello; 0 means
	// DefaultHelloTimeout.
	HelloTimeout time.Duration
	// Logger gets the server's log lines; nil discards them.
	Logger *slog.Logger
}

// Stats are the server's counters, for metrics.
type Stats struct {
	Clients     int64 // connected now
	Leases      int64 // held now
	Grants      int64 // since Listen
	Revocations int64 // revoke messages sent since Listen
	Drops       int64 // connections dropped for not keeping up, since Listen
}

// Server is a lease server listening on a Unix socket. It owns a goroutine
// per connection, and per lease it granted; Close stops and waits for them.
type Server struct {
	cfg      Config
	allow    allowRule
	listener *net.UnixListener
	wg       sync.WaitGroup

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool

	leases, grants, revocations, drops atomic.Int64
}

// Listen starts serving cfg.Runtime on cfg.Listener, or on a Unix socket
// at cfg.Path (see ListenSocket for how the path is taken).
func Listen(cfg Config) (*Server, error) {
	if cfg.Runtime == nil {
		return nil, fmt.Errorf("share: no runtime to serve: %w", supervisor.ErrConfig)
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.SendQueue <= 0 {
		cfg.SendQueue = DefaultSendQueue
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.HelloTimeout <= 0 {
		cfg.HelloTimeout = DefaultHelloTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l := cfg.Listener
	if l == nil {
		var err error
		if l, err = ListenSocket(cfg.Path); err != nil {
			return nil, err
		}
	}
	s := &Server{cfg: cfg, allow: newAllowRule(cfg.AllowUIDs, cfg.AllowGIDs), listener: l, conns: map[*conn]struct{}{}}
	s.wg.Go(s.accept)
	return s, nil
}

// Stats reads the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	clients := int64(len(s.conns))
	s.mu.Unlock()
	return Stats{Clients: clients, Leases: s.leases.Load(), Grants: s.grants.Load(), Revocations: s.revocations.Load(), Drops: s.drops.Load()}
}

// Close stops accepting, closes every connection (their leases end as
// disconnected), removes the socket and waits for every goroutine. It is
// idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	err := s.listener.Close()
	for _, c := range conns {
		c.close()
	}
	s.wg.Wait()
	return err
}

// accept admits connections until the listener closes.
func (s *Server) accept() {
	for {
		nc, err := s.listener.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.cfg.Logger.Warn("lease server stopped accepting", "err", err)
			}
			return
		}
		s.admit(nc)
	}
}

// admit checks a new connection's peer and the client limit before reading
// anything, and starts serving it; a refused one gets one error and is
// closed.
func (s *Server) admit(nc *net.UnixConn) {
	peer, err := peerOf(nc)
	if err == nil {
		err = s.allow.check(peer)
	}
	if err != nil {
		s.refuse(nc, err)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	if len(s.conns) >= s.cfg.MaxClients {
		s.mu.Unlock()
		s.refuse(nc, &Error{Code: CodeBusy, Message: fmt.Sprintf("the server holds its limit of %d clients", s.cfg.MaxClients)})
		return
	}
	c := newConn(s, nc, peer)
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.wg.Go(c.serve)
	s.wg.Go(c.write)
}

// refuse sends one error frame, within the write timeout, and closes.
func (s *Server) refuse(nc *net.UnixConn, err error) {
	var pe *Error
	if !errors.As(err, &pe) {
		pe = &Error{Code: CodeNotAllowed, Message: err.Error()}
	}
	s.cfg.Logger.Info("lease server refused a client", "code", pe.Code, "reason", pe.Message)
	body, _ := json.Marshal(reply{Op: opError, Code: pe.Code, Message: pe.Message})
	_ = nc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	_ = writeFrame(nc, body, nil)
	nc.Close()
}

// forget removes a closed connection.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// clients describes every connected client, for status.
func (s *Server) clients() []ClientInfo {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	out := make([]ClientInfo, 0, len(conns))
	for _, c := range conns {
		out = append(out, ClientInfo{PID: c.peer.PID, UID: c.peer.UID, GID: c.peer.GID, Leases: c.leaseIDs()})
	}
	return out
}
