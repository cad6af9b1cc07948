package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/modeltest"
)

func TestFirstSignalCancelsAndASecondExitsAtOnce(t *testing.T) {
	for _, tt := range []struct {
		sig  os.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tt.sig.String(), func(t *testing.T) {
			sigs := make(chan os.Signal, 2)
			done := make(chan struct{})
			ctx, cancel := context.WithCancel(context.Background())
			exited := make(chan int, 1)
			handled := make(chan struct{})
			go func() {
				defer close(handled)
				handleSignals(sigs, done, cancel, func(code int) { exited <- code })
			}()

			sigs <- tt.sig
			<-ctx.Done()
			assert.Empty(t, exited, "the first signal only cancels")
			sigs <- tt.sig
			assert.Equal(t, tt.code, <-exited)
			close(done)
			<-handled
		})
	}
}

func TestSignalHandlerEndsWithItsOwner(t *testing.T) {
	ctx, stop := notifySignals(context.Background(), func(int) { t.Error("exit without a signal") })
	stop()
	assert.Error(t, ctx.Err(), "stop cancels the context")
}

// TestRunExitsAtOnceOnASecondSignal holds a graceful stop up with a request
// whose headers never end (the server waits for it up to its header
// timeout), and checks that a second SIGTERM ends the process at once. The
// first signal waits until the server has read the request's start: a
// connection still in the kernel's accept queue holds nothing up, since the
// stop closes the listener and is done at once.
func TestRunExitsAtOnceOnASecondSignal(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	model, _ := modeltest.WriteRandomFile(t, dir, "model.bin", 64<<10)
	p := startVramseal(t, dir, append(smallRunFlags(dir, token), model)...)
	addr := p.waitForLog(t, "serving")["addr"].(string)
	p.waitForLog(t, "every shard sealed and verified")
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("GET /metrics HTTP/1.1\r\nHost: x\r\n")) // and no blank line
	require.NoError(t, err)
	waitUntilServerHasRead(t, conn)

	p.signal(t, syscall.SIGTERM)
	p.waitForLog(t, "stopping")
	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	assert.Equal(t, 143, p.wait(t), "stderr:\n%s", p.stderr(t))
	t.Logf("exited %s after the second signal (loaded machine)", time.Since(start).Round(time.Millisecond))
	assert.Less(t, time.Since(start), readHeaderTimeout, "it did not wait for the graceful stop")
	assert.Contains(t, lastLine(p.stderr(t)), "second signal: exiting at once (exit 143)")
}

// waitUntilServerHasRead waits until the server's end of conn has read every
// byte sent on it: then the server has accepted conn and is serving it.
// Linux shows it in /proc/net/tcp, whose rx_queue column counts the bytes a
// socket has received and its process not yet read.
func waitUntilServerHasRead(t *testing.T, conn net.Conn) {
	t.Helper()
	// The server's end is the row whose local address is conn's remote one.
	local, remote := procNetTCPAddr(t, conn.RemoteAddr()), procNetTCPAddr(t, conn.LocalAddr())
	eventually(t, func() (bool, string) {
		table, err := os.ReadFile("/proc/net/tcp")
		require.NoError(t, err)
		for _, row := range strings.Split(string(table), "\n")[1:] {
			f := strings.Fields(row) // sl local_address rem_address st tx_queue:rx_queue ...
			if len(f) > 4 && f[1] == local && f[2] == remote {
				_, rx, _ := strings.Cut(f[4], ":")
				return rx == "00000000", "the server has not read the request yet: rx_queue " + rx
			}
		}
		return false, "no server end of " + local + " in /proc/net/tcp"
	})
}

// procNetTCPAddr writes an IPv4 TCP address as /proc/net/tcp does: the
// address's four bytes as one hex number in the host's byte order, then the
// port in hex.
func procNetTCPAddr(t *testing.T, addr net.Addr) string {
	t.Helper()
	ap := addr.(*net.TCPAddr).AddrPort()
	ip := ap.Addr().Unmap()
	require.True(t, ip.Is4(), "%s is not an IPv4 address", addr)
	b := ip.As4()
	return fmt.Sprintf("%08X:%04X", binary.NativeEndian.Uint32(b[:]), ap.Port())
}
