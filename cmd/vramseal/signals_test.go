package main

import (
	"context"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
// timeout), and checks that a second SIGTERM ends the process at once.
func TestRunExitsAtOnceOnASecondSignal(t *testing.T) {
	dir := t.TempDir()
	token := writeToken(t, dir)
	model, _ := writeRandomFile(t, dir, "model.bin", 64<<10)
	p := startVramseal(t, dir, append(smallRunFlags(dir, token), model)...)
	addr := p.waitForLog(t, "serving")["addr"].(string)
	p.waitForLog(t, "every shard sealed and verified")
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("GET /metrics HTTP/1.1\r\nHost: x\r\n")) // and no blank line
	require.NoError(t, err)

	p.signal(t, syscall.SIGTERM)
	p.waitForLog(t, "stopping")
	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	assert.Equal(t, 143, p.wait(t), "stderr:\n%s", p.stderr(t))
	t.Logf("exited %s after the second signal (loaded machine)", time.Since(start).Round(time.Millisecond))
	assert.Less(t, time.Since(start), readHeaderTimeout, "it did not wait for the graceful stop")
	assert.Contains(t, lastLine(p.stderr(t)), "second signal: exiting at once (exit 143)")
}
