package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/internal/modeltest"
)

// failStopBound is how soon after its audit log fails a worker must have
// fail-stopped; generous against a loaded machine, and far below the
// hang it guards against.
const failStopBound = 10 * time.Second

// scrubbingFlags seal eight small files and scrub them every interval:
// with 100ms, the worker writes eight audit records a tenth of a second.
func scrubbingFlags(t *testing.T, dir, token, logPath, interval string) []string {
	args := []string{
		"run", "--backend", "sim", "--sim-devices", "2", "--sim-vram", "64MiB",
		"--chunk-size", "64KiB", "--verify-interval", interval, "--listen", "",
		"--token-file", token, "--audit-log", logPath, "--log-format", "json", "--worker-id", "e2e-worker",
	}
	for i := range 8 {
		path, _ := modeltest.WriteRandomFile(t, dir, fmt.Sprintf("part-%d.bin", i), 64<<10)
		args = append(args, path)
	}
	return args
}

// assertAuditFailStop checks that p exited 3 within failStopBound of since,
// naming the audit log's failure and want.
func assertAuditFailStop(t *testing.T, p *process, since time.Time, want string) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(failStopBound):
		require.FailNow(t, "worker ran on with a failed audit log", "stderr:\n%s", p.stderr(t))
	}
	t.Logf("exited %s after its audit log failed (bound %s, loaded machine)", time.Since(since).Round(time.Millisecond), failStopBound)
	assert.Equal(t, exitFailStop, p.cmd.ProcessState.ExitCode(), "stderr:\n%s", p.stderr(t))
	last := lastLine(p.stderr(t))
	assert.True(t, strings.HasPrefix(last, "vramseal: fail-stop: audit log failed: "), last)
	assert.Contains(t, last, want)
}

func TestRunFailStopsWhenItsAuditLogIsDeleted(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	logPath := filepath.Join(dir, "audit.jsonl")
	p := startVramseal(t, dir, scrubbingFlags(t, dir, token, logPath, "100ms")...)
	p.waitForLog(t, "every shard sealed and verified")

	require.NoError(t, os.Remove(logPath))
	assertAuditFailStop(t, p, time.Now(), "was removed")
}

func TestRunFailStopsWhenItsIdleAuditLogIsReplaced(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	logPath := filepath.Join(dir, "audit.jsonl")
	p := startVramseal(t, dir, scrubbingFlags(t, dir, token, logPath, "0")...) // nothing to record after sealing
	p.waitForLog(t, "every shard sealed and verified")

	require.NoError(t, os.WriteFile(logPath+".new", nil, 0o600))
	require.NoError(t, os.Rename(logPath+".new", logPath))
	assertAuditFailStop(t, p, time.Now(), "was replaced")
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory, unmounted at
// cleanup, or skips the test where mounting is not permitted.
func mountTmpfs(t *testing.T, size int) string {
	dir := t.TempDir()
	err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size))
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		t.Skipf("mounting a tmpfs is not permitted here (%v): run the test as root, or in a user and mount namespace", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, syscall.Unmount(dir, 0)) })
	return dir
}

func TestRunFailStopsWhenItsAuditLogFillsItsFilesystem(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	logPath := filepath.Join(mountTmpfs(t, 64<<10), "audit.jsonl")
	p := startVramseal(t, dir, scrubbingFlags(t, dir, token, logPath, "100ms")...)

	select {
	case <-p.done:
	case <-time.After(processTimeout):
		require.FailNow(t, "the audit log's filesystem never filled, or the worker ran on", "stderr:\n%s", p.stderr(t))
	}
	assert.Equal(t, exitFailStop, p.cmd.ProcessState.ExitCode(), "stderr:\n%s", p.stderr(t))
	last := lastLine(p.stderr(t))
	assert.True(t, strings.HasPrefix(last, "vramseal: fail-stop: audit log failed: "), last)
	assert.Contains(t, last, "no space left on device")

	data, err := os.ReadFile(logPath)
	require.NoError(t, err)
	require.NotEmpty(t, data)
	assert.Equal(t, byte('\n'), data[len(data)-1], "the log ends with a whole line, not a torn one")
	lines := readAuditLog(t, logPath)
	assert.Equal(t, audit.EventWorkerStarted, lines[0].Event)
	assert.NotEmpty(t, countEvents(lines, audit.EventSealVerified), "it scrubbed and recorded until the disk was full")

	verify := runVramseal(t, dir, "audit", "verify", logPath, "--token-file", token)
	assert.Equal(t, exitOK, verify.code, "what the full disk kept is an intact prefix: %s", verify.stderr)
	t.Logf("%d records fit; %s", len(lines), strings.TrimSpace(verify.stdout))
}

func TestRunKeepsALastRecordMissingOnlyItsNewline(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	logPath := filepath.Join(dir, "audit.jsonl")
	model, _ := modeltest.WriteRandomFile(t, dir, "model.bin", 64<<10)
	args := append(smallRunFlags(dir, token), "--duration", "100ms", model)
	first := runVramseal(t, dir, args...)
	require.Equal(t, exitOK, first.code, "stderr:\n%s", first.stderr)
	before := readAuditLog(t, logPath)
	data, err := os.ReadFile(logPath)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(logPath, data[:len(data)-1], 0o600)) // the last record's newline only

	second := runVramseal(t, dir, args...)
	require.Equal(t, exitOK, second.code, "stderr:\n%s", second.stderr)
	after := readAuditLog(t, logPath)
	assert.Equal(t, before, after[:len(before)], "every record of the first run is kept, the last one too")
	assert.Empty(t, countEvents(after, audit.EventLogTruncated), "nothing was cut")
	assert.Equal(t, audit.EventWorkerStarted, after[len(before)].Event, "the second run continues after it")
	verify := runVramseal(t, dir, "audit", "verify", logPath, "--token-file", token)
	assert.Equal(t, exitOK, verify.code, verify.stderr)
}
