package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/modeltest"
)

// pyVerifier is the independent verifier, written from docs/audit-format.md.
const pyVerifier = "../../audit/pyverify/verify_audit.py"

// python3 is the interpreter the independent verifier runs on. Where it is
// missing the test skips, but not in CI (CI set), whose .ci/run installs it.
func python3(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			require.FailNow(t, "python3 is missing", "CI must run the independent audit verifier: install python3 (.ci/run does, with apt-get)")
		}
		t.Skip("python3 not found: the independent audit verifier cannot run (CI installs it)")
	}
	return path
}

// verdict is what a verifier said about a log, in the words both print.
type verdict struct {
	code    int
	records string // intact records, before the first bad line if any
	worker  string // when intact
	head    string // when intact
	line    string // the first bad line
	reason  string // what happened there, or truncated/diverged for a head
}

var (
	intactVerdict = regexp.MustCompile(`intact: (\d+) records by worker "([^"]*)", head ([0-9a-f]*)`)
	badVerdict    = regexp.MustCompile(`NOT intact: line (\d+): (\w+): .*; the (\d+) records before it are intact`)
	headVerdict   = regexp.MustCompile(`intact[:]? \(?(\d+) records.* but it is (truncated|diverged): `)
)

// parseVerdict reads a verifier's output into a verdict.
func parseVerdict(t *testing.T, who string, code int, out string) verdict {
	t.Helper()
	v := verdict{code: code}
	switch code {
	case exitOK:
		m := intactVerdict.FindStringSubmatch(out)
		require.NotNil(t, m, "%s said intact: %s", who, out)
		v.records, v.worker, v.head = m[1], m[2], m[3]
	case exitFailure:
		if m := badVerdict.FindStringSubmatch(out); m != nil {
			v.line, v.reason, v.records = m[1], m[2], m[3]
		} else {
			require.Contains(t, out, "NOT intact: no line of it is an audit record", who)
		}
	case exitHeadMismatch:
		m := headVerdict.FindStringSubmatch(out)
		require.NotNil(t, m, "%s said a head is missing: %s", who, out)
		v.records, v.reason = m[1], m[2]
	}
	return v
}

// runPyVerifier runs the independent verifier.
func runPyVerifier(t *testing.T, python string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, append([]string{pyVerifier}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "verify_audit.py did not finish in %s", processTimeout)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		require.NoError(t, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

func TestTheIndependentVerifierAgreesWithAuditVerify(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	python := python3(t)
	dir := t.TempDir()
	token := writeToken(t, dir)
	logPath := filepath.Join(dir, "audit.jsonl")
	var files []string
	for i := range 3 {
		path, _ := modeltest.WriteRandomFile(t, dir, fmt.Sprintf("part-%d.bin", i), 128<<10)
		files = append(files, path)
	}
	for range 2 { // two runs: the log is continued once
		res := runVramseal(t, dir, append(append(smallRunFlags(dir, token), "--duration", "1ms", "--listen", ""), files...)...)
		require.Equal(t, exitOK, res.code, res.stderr)
	}
	original, err := os.ReadFile(logPath)
	require.NoError(t, err)
	lines := bytes.SplitAfter(original, []byte("\n"))
	lines = lines[:len(lines)-1] // the empty piece after the last newline
	require.Greater(t, len(lines), 10)
	n := len(lines)

	otherDir := t.TempDir()
	otherToken := writeToken(t, otherDir)
	otherArgs := append(smallRunFlags(otherDir, otherToken), "--duration", "1ms", "--listen", "", "--worker-id", "other-worker", files[0])
	res := runVramseal(t, otherDir, otherArgs...)
	require.Equal(t, exitOK, res.code, res.stderr)
	otherLog, err := os.ReadFile(filepath.Join(otherDir, "audit.jsonl"))
	require.NoError(t, err)
	foreign := bytes.SplitAfter(otherLog, []byte("\n"))[1]

	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	without := func(i int) []byte { return join(join(lines[:i]...), join(lines[i+1:]...)) }
	insert := func(i int, line []byte) []byte { return join(join(lines[:i]...), line, join(lines[i:]...)) }
	move := func(from, to int) []byte { // from > to: a later record moved earlier
		out := append([][]byte{}, lines[:to]...)
		out = append(out, lines[from])
		out = append(out, lines[to:from]...)
		return join(append(out, lines[from+1:]...)...)
	}
	head3 := fmt.Sprintf("%d:%s", n-1, fileHeadOf(t, join(lines[:n-1]...)))

	cases := []struct {
		name  string
		log   []byte
		flags []string
		want  int
	}{
		{"intact", original, nil, exitOK},
		{"edited", bytes.Replace(original, []byte(`"size":131072`), []byte(`"size":131073`), 1), nil, exitFailure},
		{"edited mac", join(join(lines[:4]...), bytes.Replace(lines[4], []byte(`"mac":"`), []byte(`"mac":"0`), 1)[:len(lines[4])-3], []byte("\"}\n"), join(lines[5:]...)), nil, exitFailure},
		{"first record deleted", without(0), nil, exitFailure},
		{"a record deleted", without(5), nil, exitFailure},
		{"records deleted", join(join(lines[:3]...), join(lines[6:]...)), nil, exitFailure},
		{"swapped", move(6, 5), nil, exitFailure},
		{"moved earlier", move(8, 3), nil, exitFailure},
		{"repeated", insert(6, lines[2]), nil, exitFailure},
		{"copied in place", insert(3, lines[3]), nil, exitFailure},
		{"another worker's record", insert(4, foreign), nil, exitFailure},
		{"another worker's record at the end", join(original, foreign), nil, exitFailure},
		{"garbage line", insert(2, []byte("not a record\n")), nil, exitFailure},
		{"empty line inside", insert(2, []byte("\n")), nil, exitFailure},
		{"torn last line", original[:len(original)-20], nil, exitFailure},
		{"last newline cut", original[:len(original)-1], nil, exitOK},
		{"blank lines at the end", join(original, []byte("\n\n")), nil, exitOK},
		{"last records deleted", join(lines[:n-3]...), nil, exitOK},
		{"last records deleted, head kept", join(lines[:n-3]...), []string{"--expect-head", head3}, exitHeadMismatch},
		{"head held", original, []string{"--expect-head", head3}, exitOK},
		{"another log's head", original, []string{"--expect-head", fmt.Sprintf("%d:%s", 1, fileHeadOf(t, bytes.SplitAfter(otherLog, []byte("\n"))[0]))}, exitHeadMismatch},
		{"another token", original, []string{"--token-file", otherToken}, exitWrongKey},
		{"another worker's log", otherLog, nil, exitWrongKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // two processes per case, each in its own directory
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			require.NoError(t, os.WriteFile(path, tc.log, 0o600))
			flags := tc.flags
			if len(flags) == 0 || flags[0] != "--token-file" {
				flags = append([]string{"--token-file", token}, flags...)
			}
			goRes := runVramseal(t, dir, append([]string{"audit", "verify", path}, flags...)...)
			pyRes := runPyVerifier(t, python, append([]string{path}, flags...)...)
			require.Equal(t, tc.want, goRes.code, "vramseal: %s%s", goRes.stdout, goRes.stderr)
			goV := parseVerdict(t, "vramseal", goRes.code, goRes.stdout+goRes.stderr)
			pyV := parseVerdict(t, "verify_audit.py", pyRes.code, pyRes.stdout+pyRes.stderr)
			assert.Equal(t, goV, pyV, "vramseal said:\n%s%s\nverify_audit.py said:\n%s%s", goRes.stdout, goRes.stderr, pyRes.stdout, pyRes.stderr)
			t.Logf("both: exit %d %+v", goV.code, goV)
		})
	}
}

// fileHeadOf is the mac of the last line of a log's bytes.
func fileHeadOf(t *testing.T, log []byte) string {
	t.Helper()
	m := regexp.MustCompile(`"mac":"([0-9a-f]{64})"}\n$`).FindSubmatch(log)
	require.NotNil(t, m)
	return string(m[1])
}
