package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
)

// serveMetrics serves the worker's endpoints over idle metrics on a free
// port within limits, stopped at cleanup, and returns its address.
func serveMetrics(t *testing.T, limits serverLimits) string {
	t.Helper()
	m, err := newMetrics(func() int { return 0 }, nil)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := startServer(ln, newHandler(stoppedRuntime{}, make(chan struct{}), m, nil, func() audit.Head { return audit.Head{} }), limits, slog.New(slog.DiscardHandler))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, s.shutdown(ctx))
	})
	return ln.Addr().String()
}

// keepAliveRequest sends one GET of path on conn and reads its answer,
// leaving the connection open and idle.
func keepAliveRequest(t *testing.T, conn net.Conn, r *bufio.Reader, path string) int {
	t.Helper()
	_, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: worker\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(r, nil)
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode
}

// dial opens n connections to addr, closed at cleanup.
func dial(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		conns[i] = c
	}
	return conns
}

func TestMetricsAnswersUnderAThousandIdleConnections(t *testing.T) {
	addr := serveMetrics(t, defaultServerLimits)
	// Half have had a request answered and idle on keep-alive; half have
	// sent nothing at all. The silent half is opened last: the server rightly
	// closes a connection that sends no header within readHeaderTimeout, and
	// on a loaded machine the first half's requests can take that long.
	for _, c := range dial(t, addr, 500) {
		require.Equal(t, http.StatusOK, keepAliveRequest(t, c, bufio.NewReader(c), "/metrics"))
	}
	dial(t, addr, 500)
	code, body := httpGet(t, "http://"+addr+"/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "vram_")
}

func TestIdleConnectionsAreClosedAfterTheIdleTimeout(t *testing.T) {
	limits := defaultServerLimits
	limits.idle, limits.maxConns = 300*time.Millisecond, 2
	addr := serveMetrics(t, limits)
	conns := dial(t, addr, 2) // every connection the server allows
	for _, c := range conns {
		require.Equal(t, http.StatusOK, keepAliveRequest(t, c, bufio.NewReader(c), "/metrics"))
	}
	idleSince := time.Now()

	code, _ := httpGet(t, "http://"+addr+"/metrics") // waits for a slot
	assert.Equal(t, http.StatusOK, code, "a scrape gets in once the idle timeout frees a connection")
	for _, c := range conns {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err := c.Read(make([]byte, 1))
		assert.ErrorIs(t, err, io.EOF, "the server closed the idle connection")
	}
	assert.GreaterOrEqual(t, time.Since(idleSince), limits.idle, "not before the idle timeout")
}

func TestARequestWhoseBodyNeverComesIsCutOff(t *testing.T) {
	limits := defaultServerLimits
	limits.read = 300 * time.Millisecond
	addr := serveMetrics(t, limits)
	c := dial(t, addr, 1)[0]
	_, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: worker\r\nContent-Length: 1000\r\n\r\nonly a little")
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.Copy(io.Discard, c)
	assert.NoError(t, err, "the server closes the connection (EOF) rather than waiting for the body")
}
