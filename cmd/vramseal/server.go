package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"
)

// readHeaderTimeout bounds how long a client may take to send its headers.
const readHeaderTimeout = 5 * time.Second

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

// startServer serves h on ln until shutdown. It takes ownership of ln.
func startServer(ln net.Listener, h http.Handler, logger *slog.Logger) *httpServer {
	s := &httpServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: readHeaderTimeout,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		done: make(chan struct{}),
	}
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
