package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/internal/auditdoc"
	"github.com/vramseal/vramseal/internal/modeltest"
)

// Deadlines for the subprocess tests: generous, since the machine running
// them may be slow and busy; a passing run takes a fraction of them.
const (
	processTimeout = 60 * time.Second
	pollInterval   = 50 * time.Millisecond
)

// testEnv is the environment a vramseal under test runs in: the test's own,
// without any token or state directory the machine might name.
func testEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, tokenFileEnv+"=") || strings.HasPrefix(kv, "CREDENTIALS_DIRECTORY=") ||
			strings.HasPrefix(kv, "STATE_DIRECTORY=")
	})
}

// result is how a finished vramseal ended.
type result struct {
	code           int
	stdout, stderr string
}

// runVramseal runs vramseal in dir to the end.
func runVramseal(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return runVramsealEnv(t, dir, nil, args...)
}

// runVramsealEnv runs vramseal in dir to the end, with env ("KEY=value")
// added to the test environment.
func runVramsealEnv(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, vramsealBinary, args...)
	cmd.Dir, cmd.Env = dir, append(testEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "vramseal %v did not finish in %s; stderr:\n%s", args, processTimeout, stderr.String())
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		require.NoError(t, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// process is a vramseal running in the background. Its output goes to files,
// so that the test can read its log while it runs. Cleanup kills it if the
// test has not waited for it.
type process struct {
	cmd        *exec.Cmd
	stderrPath string
	done       chan struct{} // closed once Wait has returned
}

// startVramseal starts vramseal in dir.
func startVramseal(t *testing.T, dir string, args ...string) *process {
	t.Helper()
	return startVramsealEnv(t, dir, nil, args...)
}

// startVramsealEnv is startVramseal with env ("KEY=value") added to the
// process's environment.
func startVramsealEnv(t *testing.T, dir string, env []string, args ...string) *process {
	t.Helper()
	stderrPath := filepath.Join(t.TempDir(), "stderr")
	stderr, err := os.Create(stderrPath)
	require.NoError(t, err)
	t.Cleanup(func() { stderr.Close() })
	cmd := exec.Command(vramsealBinary, args...)
	cmd.Dir, cmd.Env, cmd.Stderr = dir, append(testEnv(), env...), stderr
	require.NoError(t, cmd.Start())
	p := &process{cmd: cmd, stderrPath: stderrPath, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		cmd.Wait()
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// signal sends sig to the process.
func (p *process) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
}

// wait waits for the process to end and returns its exit code.
func (p *process) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(processTimeout):
		require.FailNow(t, "vramseal did not exit", "within %s; stderr:\n%s", processTimeout, p.stderr(t))
		return -1
	}
}

// stderr is what the process has written to stderr so far.
func (p *process) stderr(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(p.stderrPath)
	require.NoError(t, err)
	return string(b)
}

// logLines parses the JSON log lines written so far; lines that are not
// JSON (such as the final error line) are skipped.
func (p *process) logLines(t *testing.T) []map[string]any {
	t.Helper()
	return jsonLogLines(p.stderr(t))
}

// jsonLogLines parses the JSON log lines in stderr, skipping the others.
func jsonLogLines(stderr string) []map[string]any {
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil {
			lines = append(lines, line)
		}
	}
	return lines
}

// logsWithMsg are the JSON log lines in stderr whose message is msg.
func logsWithMsg(stderr, msg string) []map[string]any {
	var out []map[string]any
	for _, l := range jsonLogLines(stderr) {
		if l["msg"] == msg {
			out = append(out, l)
		}
	}
	return out
}

// waitForLog waits for a log line with message msg and returns it.
func (p *process) waitForLog(t *testing.T, msg string) map[string]any {
	t.Helper()
	var found map[string]any
	eventually(t, func() (bool, string) {
		for _, line := range p.logLines(t) {
			if line["msg"] == msg {
				found = line
				return true, ""
			}
		}
		select {
		case <-p.done:
			require.FailNow(t, "vramseal exited early", "waiting for log %q; stderr:\n%s", msg, p.stderr(t))
		default:
		}
		return false, "no log line " + msg + " in:\n" + p.stderr(t)
	})
	return found
}

// eventually polls cond until it holds, failing the test with cond's last
// reason after processTimeout.
func eventually(t *testing.T, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(processTimeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			require.FailNow(t, "condition not met", "after %s: %s", processTimeout, why)
		}
		time.Sleep(pollInterval)
	}
}

// httpGet fetches url and returns the status and body. Connections are not
// kept alive, so no client goroutine outlives the test.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// writeToken writes a fresh 32-byte token file with mode 0600.
func writeToken(t *testing.T, dir string) string {
	t.Helper()
	path, _ := modeltest.WriteRandomFile(t, dir, "vramseal.token", 32)
	return path
}

// auditLine is one line of an audit log, as the tests read it.
type auditLine struct {
	Seq      uint64         `json:"seq"`
	WorkerID string         `json:"worker_id"`
	Event    string         `json:"event"`
	Severity audit.Severity `json:"severity"`
	Fields   map[string]any `json:"fields"`
}

// readAuditLog parses every line of the audit log at path, and fails the
// test on a record docs/audit-format.md's catalogue lacks: every test that
// reads the log a worker wrote checks that its events and fields are
// published.
func readAuditLog(t *testing.T, path string) []auditLine {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	catalogue, err := auditdoc.Load()
	require.NoError(t, err)
	var lines []auditLine
	for _, text := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		var line auditLine
		require.NoError(t, json.Unmarshal([]byte(text), &line), "audit line %q", text)
		assert.NoError(t, catalogue.Check(line.Event, line.Severity.String(), line.Fields), "audit line %q", text)
		lines = append(lines, line)
	}
	return lines
}

// countEvents counts the records of event per shard ID.
func countEvents(lines []auditLine, event string) map[string]int {
	counts := map[string]int{}
	for _, l := range lines {
		if l.Event == event {
			id, _ := l.Fields["shard_id"].(string)
			counts[id]++
		}
	}
	return counts
}
