package audit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crashHelperEnv names the log TestHelperProcess writes to; it is set only in
// the child process TestCrashKeepsEveryAcknowledgedRecord starts.
const crashHelperEnv = "VRAMSEAL_AUDIT_CRASH_LOG"

// crashWriters is how many goroutines write in the child at once, so that
// the kill lands among group commits.
const crashWriters = 4

// ack is one acknowledged record: which writer, and its count.
type ack struct{ writer, n int }

// TestHelperProcess is the child of TestCrashKeepsEveryAcknowledgedRecord:
// it records forever from several goroutines and prints "ack W N" for each
// record once Record has returned, until it is killed.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(crashHelperEnv)
	if path == "" {
		t.Skip("runs only as the child process of TestCrashKeepsEveryAcknowledgedRecord")
	}
	l, err := Open(path, LogConfig{Key: testKey(t, "w1")})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Go(func() {
			for n := 0; ; n++ {
				r := Record{Event: EventVramSealed, Severity: SeverityInfo, Fields: map[string]any{"writer": w, "n": n}}
				if err := l.Record(context.Background(), r); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				fmt.Printf("ack %d %d\n", w, n)
			}
		})
	}
	wg.Wait()
}

func TestCrashKeepsEveryAcknowledgedRecord(t *testing.T) {
	key := testKey(t, "w1")
	path := filepath.Join(t.TempDir(), "audit.log")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	acked := map[ack]bool{}
	lines := bufio.NewScanner(stdout)
	readAck := func() {
		var a ack
		if _, err := fmt.Sscanf(lines.Text(), "ack %d %d", &a.writer, &a.n); err == nil {
			acked[a] = true
		}
	}
	for len(acked) < 300 && lines.Scan() {
		readAck()
	}
	killErr := cmd.Process.Kill() // SIGKILL: no deferred code, no Close
	for lines.Scan() {
		readAck() // acknowledged before the kill, still in the pipe
	}
	waitErr := cmd.Wait()
	require.GreaterOrEqual(t, len(acked), 300, "child stopped early: %v\n%s", waitErr, stderr.String())
	require.NoError(t, killErr)

	// A kill between write and newline is rare; make sure there is a torn line.
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	if bytes.HasSuffix(data, []byte("\n")) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		require.NoError(t, err)
		_, err = f.WriteString(`{"seq":999999,"time":"2026-01-02T03:04:0`)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		data, err = os.ReadFile(path)
		require.NoError(t, err)
	}
	torn := len(data) - bytes.LastIndexByte(data, '\n') - 1

	l, err := Open(path, LogConfig{Key: key})
	require.NoError(t, err)
	require.NoError(t, l.Close())

	got := readLog(t, path)
	last := got[len(got)-1]
	assert.Equal(t, EventLogTruncated, last.Event)
	assert.Equal(t, float64(torn), last.Fields["bytes_cut"])
	assert.Equal(t, float64(got[len(got)-2].Seq), last.Fields["after_seq"])
	written := map[ack]bool{}
	for _, line := range got[:len(got)-1] {
		written[ack{int(line.Fields["writer"].(float64)), int(line.Fields["n"].(float64))}] = true
	}
	for a := range acked {
		assert.True(t, written[a], "acknowledged record %+v lost", a)
	}
	assert.Equal(t, len(got), verifyFile(t, path, key).Records)
}
