package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"golang.org/x/net/netutil"
)

// readHeaderTimeout bounds how long a client may take to send its headers.
const readHeaderTimeout = 5 * time.Second

// serverLimits bound what HTTP clients can hold of the worker: a client
// that connects and sends nothing, sends a request slowly, announces a body
// it never sends, reads its answer slowly or keeps an idle connection open
// is cut off, and connections beyond maxConns wait in the kernel's backlog
// until one ends, so that clients cannot exhaust the worker's file
// descriptors.
type serverLimits struct {
	readHeader, read, write, idle time.Duration
	maxConns                      int
}

// defaultServerLimits suit the endpoints, which read no bodies and answer
// in milliseconds: a scrape every few seconds keeps its connection, and a
// thousand idle ones leave room for it.
var defaultServerLimits = serverLimits{
	readHeader: readHeaderTimeout,
	read:       10 * time.Second,
	write:      30 * time.Second,
	idle:       30 * time.Second,
	maxConns:   1024,
}

// listen binds addr for the HTTP endpoints, so that an address in use fails
// the run before anything is sealed.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, usageErrorf("--listen %s: address already in use; stop the other process or pick another address, e.g. --listen 127.0.0.1:0 for any free port", addr)
	case err != nil:
		return nil, usageErrorf("--listen %s: %v; pass HOST:PORT, e.g. --listen 127.0.0.1:9400", addr, err)
	}
	return ln, nil
}

// httpServer serves the endpoints on one goroutine that it owns: shutdown
// stops it and waits for it.
type httpServer struct {
	srv  *http.Server
	done chan struct{}
	err  error // set before done closes
}

// startServer serves h on ln, within limits, until shutdown. It takes
// ownership of ln.
func startServer(ln net.Listener, h http.Handler, limits serverLimits, logger *slog.Logger) *httpServer {
	s := &httpServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: limits.readHeader,
			ReadTimeout:       limits.read,
			WriteTimeout:      limits.write,
			IdleTimeout:       limits.idle,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		done: make(chan struct{}),
	}
	ln = netutil.LimitListener(ln, limits.maxConns)
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	return s
}

// shutdown stops accepting requests, lets those in flight finish until ctx
// ends (then closes them), and waits for the serving goroutine.
func (s *httpServer) shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.srv.Close())
	}
	<-s.done
	return errors.Join(err, s.err)
}
