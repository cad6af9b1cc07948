package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/internal/modeltest"
)

// fileHead is the head of the log at path as its last line says it.
func fileHead(t *testing.T, path string) audit.Head {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	h, err := audit.ParseHeadLine(lines[len(lines)-1]) // a record line reads as a head: it has seq and mac
	require.NoError(t, err)
	return h
}

// publishedHeads are the heads a worker logged, in order.
func publishedHeads(t *testing.T, stderr string) []audit.Head {
	t.Helper()
	var heads []audit.Head
	for _, line := range strings.Split(stderr, "\n") {
		if !strings.Contains(line, audit.HeadLogMessage) {
			continue
		}
		h, err := audit.ParseHeadLine(line)
		require.NoError(t, err, line)
		heads = append(heads, h)
	}
	return heads
}

// headText is h as --expect-head takes it.
func headText(h audit.Head) string { return fmt.Sprintf("%d:%s", h.Seq, h.MAC) }

// assertHeadAgrees waits until /audit/head, vram_audit_head_seq and the
// last "audit head" log line all say the log file's last record.
func assertHeadAgrees(t *testing.T, p *process, base, logPath, when string) audit.Head {
	t.Helper()
	var want audit.Head
	eventually(t, func() (bool, string) {
		want = fileHead(t, logPath)
		code, body := httpGet(t, base+"/audit/head")
		if code != http.StatusOK {
			return false, fmt.Sprintf("/audit/head %d: %s", code, body)
		}
		served, err := audit.ParseHeadLine(body)
		require.NoError(t, err, body)
		seq := value(scrapeMetrics(t, base)["vram_audit_head_seq"].Metric[0])
		logged := publishedHeads(t, p.stderr(t))
		ok := served == want && seq == float64(want.Seq) && len(logged) > 0 && logged[len(logged)-1] == want
		return ok, fmt.Sprintf("%s: the file's head %+v, /audit/head %+v, vram_audit_head_seq %v, logged %+v", when, want, served, seq, logged)
	})
	return want
}

func TestAuditHeadIsPublishedAndCatchesALogCutAfterIt(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	logPath := filepath.Join(dir, "audit.jsonl")
	file, _ := modeltest.WriteRandomFile(t, dir, "w.bin", 256<<10)
	args := append(smallRunFlags(dir, token), "--verify-interval", "0", file)

	var stderrs []string
	var stops []audit.Head
	for run := range 2 { // the second run continues the first one's log
		p := startVramseal(t, dir, args...)
		started := p.waitForLog(t, audit.HeadLogMessage)
		base := "http://" + p.waitForLog(t, "serving")["addr"].(string)
		if run == 1 {
			assert.Greater(t, started["seq"], float64(stops[0].Seq), "the restarted worker publishes its own start, after the first run's stop")
		}
		sealed := assertHeadAgrees(t, p, base, logPath, fmt.Sprintf("run %d, after the seal", run))
		lines := readAuditLog(t, logPath)
		assert.Equal(t, audit.EventSealVerified, lines[len(lines)-1].Event, "the head holds the seal and its verification")
		p.signal(t, syscall.SIGTERM)
		require.Equal(t, exitOK, p.wait(t), p.stderr(t))
		stop := fileHead(t, logPath)
		heads := publishedHeads(t, p.stderr(t))
		assert.Equal(t, stop, heads[len(heads)-1], "run %d: the last head logged is the log's last record, its stop", run)
		assert.Greater(t, stop.Seq, sealed.Seq)
		stderrs = append(stderrs, p.stderr(t))
		stops = append(stops, stop)
	}

	headsFile := filepath.Join(dir, "heads.txt")
	var shipped bytes.Buffer
	for _, s := range stderrs {
		for _, line := range strings.Split(s, "\n") {
			if strings.Contains(line, audit.HeadLogMessage) {
				shipped.WriteString(line + "\n")
			}
		}
	}
	require.NoError(t, os.WriteFile(headsFile, shipped.Bytes(), 0o600))
	held := runVramseal(t, dir, "audit", "verify", logPath, "--token-file", token, "--heads", headsFile)
	require.Equal(t, exitOK, held.code, held.stderr)
	assert.Contains(t, held.stdout, fmt.Sprintf("heads:      holds all %d given, the last at seq %d", len(publishedHeads(t, shipped.String())), stops[1].Seq))

	// Cut the second run's stop: what root on the host can do after a fail-stop.
	data, err := os.ReadFile(logPath)
	require.NoError(t, err)
	cutAt := bytes.Index(data, fmt.Appendf(nil, `{"seq":%d,`, stops[1].Seq-1))
	require.Positive(t, cutAt)
	require.NoError(t, os.WriteFile(logPath, data[:cutAt], 0o600))

	plain := runVramseal(t, dir, "audit", "verify", logPath, "--token-file", token)
	assert.Equal(t, exitOK, plain.code, "the chain alone cannot see a cut at the end: %s", plain.stderr)
	for name, flags := range map[string][]string{
		"heads file":  {"--heads", headsFile},
		"expect-head": {"--expect-head", headText(stops[0]), "--expect-head", headText(stops[1])},
	} {
		res := runVramseal(t, dir, append([]string{"audit", "verify", logPath, "--token-file", token}, flags...)...)
		assert.Equal(t, exitHeadMismatch, res.code, "%s: %s", name, res.stderr)
		assert.Contains(t, res.stderr, fmt.Sprintf("but it is truncated: the log ends at seq %d, before the published head at seq %d", stops[1].Seq-2, stops[1].Seq), name)
		assert.Contains(t, res.stderr, "the last head it holds is seq ", name)
	}
	last := runVramseal(t, dir, "audit", "verify", logPath, "--token-file", token, "--expect-head", headText(stops[0]))
	assert.Equal(t, exitOK, last.code, "the first run's stop is still there: %s", last.stderr)
}

func TestAuditHeadIsPublishedAfterAFailStop(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	file, _ := modeltest.WriteRandomFile(t, dir, "layer0.bin", 2<<20)
	res := runVramseal(t, dir, append(smallRunFlags(dir, token), "--sim-fault", "bitflip@1s", file)...)
	require.Equal(t, exitFailStop, res.code, res.stderr)

	logPath := filepath.Join(dir, "audit.jsonl")
	lines := readAuditLog(t, logPath)
	failed := uint64(0)
	for _, l := range lines {
		if l.Event == audit.EventSealVerificationFailed {
			failed = l.Seq
		}
	}
	require.Positive(t, failed)
	heads := publishedHeads(t, res.stderr)
	require.NotEmpty(t, heads)
	assert.Equal(t, fileHead(t, logPath), heads[len(heads)-1], "the last head logged is the log's last record")
	critical := false
	for _, h := range heads[:len(heads)-1] {
		critical = critical || h.Seq >= failed
	}
	assert.True(t, critical, "the critical record's head was published before the stop's: %+v, critical record at seq %d", heads, failed)
	verify := runVramseal(t, dir, "audit", "verify", logPath, "--token-file", token, "--expect-head", headText(heads[len(heads)-1]))
	assert.Equal(t, exitOK, verify.code, verify.stderr)
}

func TestAuditVerifyRefusesBadHeads(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir, logPath, token := sealedAuditLog(t)
	_, otherLog, otherToken := sealedAuditLog(t)
	ours, theirs := fileHead(t, logPath), fileHead(t, otherLog)
	require.NotEmpty(t, otherToken)
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
		return path
	}
	verify := func(flags ...string) result {
		return runVramseal(t, dir, append([]string{"audit", "verify", logPath, "--token-file", token}, flags...)...)
	}
	for name, tc := range map[string]struct {
		flags []string
		code  int
		want  string
	}{
		"not SEQ:MAC":      {[]string{"--expect-head", "12"}, exitUsage, `--expect-head not an audit head: "12" is not SEQ:MAC`},
		"short mac":        {[]string{"--expect-head", "3:abc"}, exitUsage, "mac is 3 characters, want 64 hex digits"},
		"seq 0":            {[]string{"--expect-head", "0:" + ours.MAC}, exitUsage, "seq 0: records count from 1"},
		"garbage line":     {[]string{"--heads", write("garbage.txt", headText(ours)+"\n\nnot a head\n")}, exitUsage, "garbage.txt, line 3: not an audit head"},
		"other log line":   {[]string{"--heads", write("other.txt", `{"msg":"worker started","seq":1}`+"\n")}, exitUsage, `line 1: not an audit head: a log line of message "worker started"`},
		"empty file":       {[]string{"--heads", write("empty.txt", "\n")}, exitUsage, "holds no head"},
		"missing file":     {[]string{"--heads", filepath.Join(dir, "nope")}, exitUsage, "does not exist"},
		"other worker":     {[]string{"--heads", write("worker.txt", fmt.Sprintf(`{"worker_id":"w9","seq":%d,"mac":%q}`+"\n", ours.Seq, ours.MAC))}, exitUsage, `worker.txt line 1 is a head of worker "w9", and this log is worker "e2e-worker"'s`},
		"other log's head": {[]string{"--expect-head", headText(theirs)}, exitHeadMismatch, "but it is diverged: the record at seq"},
		"beyond the end":   {[]string{"--expect-head", fmt.Sprintf("%d:%s", ours.Seq+1, ours.MAC)}, exitHeadMismatch, "it holds none of the heads given"},
		"held":             {[]string{"--expect-head", headText(ours)}, exitOK, ""},
	} {
		t.Run(name, func(t *testing.T) {
			res := verify(tc.flags...)
			assert.Equal(t, tc.code, res.code, res.stderr)
			assert.Contains(t, res.stderr, tc.want)
			assert.NotContains(t, res.stderr, "panic")
		})
	}
}
