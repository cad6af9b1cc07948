package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/modeltest"
)

// notifySocket is systemd's end of $NOTIFY_SOCKET, for tests.
type notifySocket struct {
	conn *net.UnixConn
}

// listenNotify sets $NOTIFY_SOCKET, and $WATCHDOG_USEC to watchdog when it
// is positive, for the rest of the test, and listens there as systemd does.
func listenNotify(t *testing.T, watchdog time.Duration) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_PID", "")
	t.Setenv("WATCHDOG_USEC", "")
	if watchdog > 0 {
		t.Setenv("WATCHDOG_USEC", strconv.FormatInt(watchdog.Microseconds(), 10))
	}
	return &notifySocket{conn: conn}
}

// next returns the next message sent to the socket.
func (s *notifySocket) next(t *testing.T) string {
	t.Helper()
	require.NoError(t, s.conn.SetReadDeadline(time.Now().Add(processTimeout)))
	buf := make([]byte, 4096)
	n, err := s.conn.Read(buf)
	require.NoError(t, err, "no message to systemd within %s", processTimeout)
	return string(buf[:n])
}

func TestServiceManagerPingsTheWatchdogOnlyWhileTheRuntimeAnswers(t *testing.T) {
	socket := listenNotify(t, 40*time.Millisecond)
	m := newServiceManager(slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.Equal(t, 40*time.Millisecond, m.watchdog)
	answers := make(chan error)
	asked := make(chan struct{})
	alive := func(ctx context.Context) error {
		select {
		case asked <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case err := <-answers:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	m.ready("shards sealed and verified: 2", alive)
	assert.Equal(t, "READY=1\nSTATUS=shards sealed and verified: 2", socket.next(t))
	<-asked
	answers <- nil
	assert.Equal(t, "WATCHDOG=1", socket.next(t))
	// A runtime that fails, or does not answer within half the period, gets
	// no ping: the next message systemd hears is the stop.
	<-asked
	answers <- errors.New("worker stopped")
	<-asked // left unanswered: the check times out
	<-asked // asked again, so the one before has ended
	m.stopping("stopping")
	assert.Equal(t, "STOPPING=1\nSTATUS=stopping", socket.next(t))
}

func TestServiceManagerWithoutAWatchdogOnlyNotifies(t *testing.T) {
	socket := listenNotify(t, 0)
	m := newServiceManager(slog.New(slog.NewTextHandler(io.Discard, nil)))
	called := false
	m.ready("ready", func(context.Context) error { called = true; return nil })
	assert.Equal(t, "READY=1\nSTATUS=ready", socket.next(t))
	m.stopping("stopping")
	assert.Equal(t, "STOPPING=1\nSTATUS=stopping", socket.next(t))
	assert.False(t, called, "no watchdog, no pings")
}

func TestServiceManagerWithoutSystemdSendsNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	m := newServiceManager(slog.New(slog.NewTextHandler(io.Discard, nil)))
	m.ready("ready", func(context.Context) error { return nil })
	m.stopping("stopping")
	assert.Nil(t, m.done, "no watchdog goroutine")
}

func TestRunTellsSystemdReadyOnceSealedAndVerifiedAndStopping(t *testing.T) {
	socket := listenNotify(t, time.Second)
	dir := t.TempDir()
	file, _ := modeltest.WriteRandomFile(t, dir, "w.bin", 256<<10)
	p := startInProcess(t, newMockMachine(t, 1<<20), "run", "--backend", "sim", "--chunk-size", "64KiB", "--listen", "",
		"--audit-log", filepath.Join(dir, "audit.jsonl"), "--log-format", "json", "--verify-interval", "100ms", file)

	assert.Equal(t, "READY=1\nSTATUS=shards sealed and verified: 1", socket.next(t))
	assert.NotNil(t, p.findLog("every shard sealed and verified", nil), "ready only once sealed and verified")
	assert.Equal(t, "WATCHDOG=1", socket.next(t))

	p.stop(t)
	assert.Equal(t, exitOK, p.code, "%v", p.err)
	msg := socket.next(t)
	for msg == "WATCHDOG=1" {
		msg = socket.next(t)
	}
	assert.Equal(t, "STOPPING=1\nSTATUS=stopping", msg)
}
