package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	prommodel "github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/internal/modeltest"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/model"
)

// smallRunFlags keep a worker under test small and quick: two 64 MiB
// simulated devices, 64 KiB chunks and a scrub every 200 ms.
func smallRunFlags(dir, token string) []string {
	return []string{
		"run", "--backend", "sim", "--sim-devices", "2", "--sim-vram", "64MiB",
		"--chunk-size", "64KiB", "--verify-interval", "200ms", "--listen", "127.0.0.1:0",
		"--token-file", token, "--audit-log", filepath.Join(dir, "audit.jsonl"),
		"--log-format", "json", "--worker-id", "e2e-worker",
	}
}

func TestRunSealsFilesServesThemAndStopsCleanlyOnSIGTERM(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	fileA, dataA := modeltest.WriteRandomFile(t, dir, "weights-a.bin", 1<<20)
	fileB, dataB := modeltest.WriteRandomFile(t, dir, "weights b.bin", 3<<20+123)
	want := map[string][]byte{"weights-a.bin": dataA, "weights_b.bin": dataB}

	p := startVramseal(t, dir, append(smallRunFlags(dir, token), fileA, fileB)...)
	first := p.waitForLog(t, "using simulated GPUs")
	assert.Equal(t, "sim", first["backend"])
	base := "http://" + p.waitForLog(t, "serving")["addr"].(string)

	eventually(t, func() (bool, string) {
		code, body := httpGet(t, base+"/readyz")
		return code == http.StatusOK, fmt.Sprintf("/readyz %d: %s", code, body)
	})
	code, _ := httpGet(t, base+"/healthz")
	assert.Equal(t, http.StatusOK, code)

	t.Run("shards", func(t *testing.T) {
		code, body := httpGet(t, base+"/shards")
		require.Equal(t, http.StatusOK, code)
		var shards []messages.ShardStatus
		require.NoError(t, json.Unmarshal([]byte(body), &shards))
		require.Len(t, shards, len(want))
		for _, s := range shards {
			data, ok := want[s.ID]
			require.True(t, ok, "unexpected shard %q", s.ID)
			sum := sha256.Sum256(data)
			assert.Equal(t, int64(len(data)), s.Size, s.ID)
			assert.Equal(t, hex.EncodeToString(sum[:]), s.Digest, s.ID)
			assert.False(t, s.LastVerified.IsZero(), s.ID)
			assert.False(t, s.SealedAt.IsZero(), s.ID)
		}
		assert.NotContains(t, body, "0x", "no device addresses")
	})

	t.Run("metrics", func(t *testing.T) {
		sealedBytes := float64(len(dataA) + len(dataB))
		// Wait until the background scrub has re-hashed every shard at least
		// once: a full pass on each device (passes on one device alone can
		// add up to the bytes sealed on both, on a loaded machine).
		var families map[string]*dto.MetricFamily
		eventually(t, func() (bool, string) {
			families = scrapeMetrics(t, base)
			scrubbed := sumSeries(families["vram_scrubbed_bytes_total"])
			passed := len(families["vram_scrub_last_pass_timestamp_seconds"].GetMetric())
			return scrubbed >= sealedBytes && passed == 2, fmt.Sprintf("scrubbed %v of %v bytes, full passes on %d of 2 devices", scrubbed, sealedBytes, passed)
		})
		for _, name := range []string{
			"vram_total_bytes", "vram_used_bytes", "vram_available_bytes",
			"vram_seal_operations_total", "vram_verify_operations_total", "vram_scrubbed_bytes_total",
			"vram_shard_seconds_since_verified", "vram_audit_queue_depth",
		} {
			assert.Contains(t, families, name)
		}
		assert.Equal(t, map[string]float64{"0": 64 << 20, "1": 64 << 20}, byLabel(families["vram_total_bytes"], "device"))
		assert.Equal(t, sealedBytes, sumSeries(families["vram_used_bytes"]), "simulated VRAM in use is exactly the sealed bytes")
		assert.Equal(t, 2*float64(64<<20)-sealedBytes, sumSeries(families["vram_available_bytes"]))
		assert.Equal(t, map[string]float64{"success": 2, "failure": 0}, byLabel(families["vram_seal_operations_total"], "result"))
		verifies := byLabel(families["vram_verify_operations_total"], "result")
		assert.GreaterOrEqual(t, verifies["success"], 4.0, "two on-demand verifies and at least one scrub of each shard")
		assert.Zero(t, verifies["failure"])
		ages := byLabel(families["vram_shard_seconds_since_verified"], "shard")
		assert.ElementsMatch(t, []string{"weights-a.bin", "weights_b.bin"}, keys(ages))

		uuids := byLabel(families["vram_total_bytes"], "uuid")
		require.Len(t, uuids, 2, "each device's series carries its UUID")
		for uuid := range uuids {
			assert.True(t, strings.HasPrefix(uuid, "GPU-"), uuid)
		}
		for _, name := range []string{"vram_shard_seconds_since_verified", "vram_scrub_last_pass_timestamp_seconds", "vram_scrub_pass_duration_seconds"} {
			for _, m := range families[name].GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				assert.Contains(t, uuids, labels["uuid"], "%s: device and uuid labels", name)
				assert.NotEmpty(t, labels["device"], name)
			}
		}
		assert.Len(t, families["vram_scrub_last_pass_timestamp_seconds"].GetMetric(), 2, "a full pass on each device")
		for _, m := range families["vram_scrub_last_pass_timestamp_seconds"].GetMetric() {
			assert.InDelta(t, float64(time.Now().Unix()), value(m), 60)
		}
		assert.Equal(t, 1.0, sumSeries(families["vram_ready"]))
		assert.Equal(t, 0.0, sumSeries(families["vram_failstopped"]))
		assert.Contains(t, families, "vram_failstopped")
		assert.Equal(t, 1.0, sumSeries(families["vramseal_build_info"]))
	})

	t.Run("index", func(t *testing.T) {
		code, body := httpGet(t, base+"/")
		require.Equal(t, http.StatusOK, code)
		for _, path := range []string{"/metrics", "/healthz", "/readyz", "/shards"} {
			assert.Contains(t, body, path)
		}
		code, _ = httpGet(t, base+"/nope")
		assert.Equal(t, http.StatusNotFound, code)
	})

	p.signal(t, syscall.SIGTERM)
	require.Equal(t, exitOK, p.wait(t), "stderr:\n%s", p.stderr(t))
	assert.NotContains(t, p.stderr(t), `"level":"ERROR"`)

	logPath := filepath.Join(dir, "audit.jsonl")
	lines := readAuditLog(t, logPath)
	assert.Equal(t, map[string]int{"weights-a.bin": 1, "weights_b.bin": 1}, countEvents(lines, audit.EventVramSealed))
	assert.Equal(t, map[string]int{"weights-a.bin": 1, "weights_b.bin": 1}, countEvents(lines, audit.EventVramDeallocated))
	last := lines[len(lines)-1]
	assert.Equal(t, audit.EventWorkerStopped, last.Event)
	assert.Equal(t, true, last.Fields["graceful"])

	verify := runVramseal(t, dir, "audit", "verify", logPath, "--token-file", token)
	require.Equal(t, exitOK, verify.code, "stderr: %s", verify.stderr)
	assert.Contains(t, verify.stdout, fmt.Sprintf("is intact: %d records by worker \"e2e-worker\"", len(lines)))
}

func TestRunFailStopsOnAFlippedBit(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	file, _ := modeltest.WriteRandomFile(t, dir, "layer0.bin", 2<<20)

	res := runVramseal(t, dir, append(smallRunFlags(dir, token), "--sim-fault", "bitflip@1s", file)...)

	require.Equal(t, exitFailStop, res.code, "stderr:\n%s", res.stderr)
	errLine := lastLine(res.stderr)
	assert.True(t, strings.HasPrefix(errLine, "vramseal: fail-stop: "), errLine)
	assert.Contains(t, errLine, `shard "layer0.bin"`)
	assert.Regexp(t, `chunk \d+ \(bytes \d+-\d+\)`, errLine)
	assert.Equal(t, 1, strings.Count(res.stderr, "does not match its sealed digest"), "the cause is printed once; stderr:\n%s", res.stderr)
	flipped := logsWithMsg(res.stderr, "sim-fault: flipped one bit in simulated VRAM")
	require.Len(t, flipped, 1)
	assert.Equal(t, "layer0.bin", flipped[0]["shard"], "the fault names the shard it flips")
	assert.Contains(t, errLine, fmt.Sprintf("chunk %v (bytes", flipped[0]["chunk"]), "and the fail-stop names the same chunk")

	logPath := filepath.Join(dir, "audit.jsonl")
	lines := readAuditLog(t, logPath)
	assert.True(t, strings.HasSuffix(errLine, fmt.Sprintf("; VRAM freed, audit log closed (%d records)", len(lines))), errLine)
	failed := -1
	for i, l := range lines {
		if l.Event == audit.EventSealVerificationFailed {
			failed = i
			break
		}
	}
	require.GreaterOrEqual(t, failed, 0, "no SealVerificationFailed record")
	assert.Equal(t, audit.SeverityCritical, lines[failed].Severity)
	assert.Equal(t, "layer0.bin", lines[failed].Fields["shard_id"])
	assert.Contains(t, lines[failed].Fields, "chunk")
	for _, l := range lines[failed+1 : len(lines)-1] {
		assert.Equal(t, audit.EventVramDeallocated, l.Event, "only the freeing of VRAM comes between the failure and the stop")
	}
	last := lines[len(lines)-1]
	assert.Equal(t, audit.EventWorkerStopped, last.Event)
	assert.Equal(t, audit.SeverityCritical, last.Severity)

	verify := runVramseal(t, dir, "audit", "verify", logPath, "--token-file", token)
	assert.Equal(t, exitOK, verify.code, "the log of a fail-stop is itself intact: %s", verify.stderr)
}

func TestRunSealsTheDemoModelWhenGivenNoFiles(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	demo := []string{"run", "--backend", "sim", "--duration", "200ms", "--verify-interval", "100ms", "--listen", "", "--log-format", "json"}
	first := runVramseal(t, dir, demo...)
	require.Equal(t, exitOK, first.code, "stderr:\n%s", first.stderr)
	assert.Contains(t, first.stderr, `"token_file":"./vramseal-audit.token","token":"made now"`)
	info, err := os.Stat(filepath.Join(dir, "vramseal-audit.token"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the kept token is private")

	second := runVramseal(t, dir, demo...)
	require.Equal(t, exitOK, second.code, "a second token-less run continues the same log; stderr:\n%s", second.stderr)
	assert.Contains(t, second.stderr, `"token":"from an earlier run"`)

	lines := readAuditLog(t, filepath.Join(dir, "vramseal-audit.jsonl"))
	sealed := 0
	for _, l := range lines {
		if l.Event == audit.EventVramSealed {
			sealed++
			assert.Equal(t, model.DemoModelRef, l.Fields["model_ref"])
			assert.EqualValues(t, model.DemoShards, l.Fields["total_shards"])
			assert.EqualValues(t, model.DemoShardBytes, l.Fields["size"])
		}
	}
	assert.Equal(t, 2*model.DemoShards, sealed, "both runs sealed the demo model into one log")
	verify := runVramseal(t, dir, "audit", "verify", "vramseal-audit.jsonl")
	assert.Equal(t, exitOK, verify.code, "audit verify finds the kept token beside the log: %s", verify.stderr)
	assert.Contains(t, verify.stdout, "token:      vramseal-audit.token (kept beside the log by a run on simulated GPUs), key fingerprint ")
}

func TestRunWithoutATokenRefusesALogAnotherTokenWrote(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir, logPath, _ := sealedAuditLog(t)
	res := runVramseal(t, dir, "run", "--backend", "sim", "--duration", "1ms", "--listen", "", "--audit-log", logPath)
	assert.Equal(t, exitUsage, res.code)
	assert.Contains(t, res.stderr, "written with a token this run was not given; pass --token-file")
	assert.NoFileExists(t, simTokenPath(logPath), "no token is made for a log it cannot continue")
}

// scrapeMetrics fetches and parses /metrics.
func scrapeMetrics(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, base+"/metrics")
	require.Equal(t, http.StatusOK, code, body)
	parser := expfmt.NewTextParser(prommodel.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	return families
}

// value is a counter's or gauge's value.
func value(m *dto.Metric) float64 {
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

// sumSeries adds up every series of a family; 0 for a missing family.
func sumSeries(f *dto.MetricFamily) float64 {
	var total float64
	for _, m := range f.GetMetric() {
		total += value(m)
	}
	return total
}

// byLabel maps each series' value of label to its value.
func byLabel(f *dto.MetricFamily, label string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				out[l.GetValue()] = value(m)
			}
		}
	}
	return out
}

func keys(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestRunOnALogAnotherWorkerWritesNamesThatProcess(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	file, _ := modeltest.WriteRandomFile(t, dir, "w.bin", 256<<10)
	first := startVramseal(t, dir, append(smallRunFlags(dir, token), file)...)
	first.waitForLog(t, "worker started")

	second := runVramseal(t, dir, append(smallRunFlags(dir, token), "--listen", "", file)...)
	assert.Equal(t, exitUsage, second.code, second.stderr)
	errLine := lastLine(second.stderr)
	assert.Contains(t, errLine, fmt.Sprintf("is in use: another process (PID %d (vramseal)) writes it", first.cmd.Process.Pid))
	assert.NotContains(t, errLine, "another token", "a lock is not a token problem")

	first.signal(t, syscall.SIGTERM)
	assert.Equal(t, exitOK, first.wait(t), first.stderr(t))
}

func TestReadyzWarnsWhenTheScrubRateCannotKeepUpWithTheInterval(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	file, _ := modeltest.WriteRandomFile(t, dir, "w.bin", 1<<20)
	p := startVramseal(t, dir, append(smallRunFlags(dir, token), "--verify-interval", "100ms", "--scrub-rate", "1MiB/s", file)...)
	base := "http://" + p.waitForLog(t, "serving")["addr"].(string)
	var body string
	eventually(t, func() (bool, string) {
		var code int
		code, body = httpGet(t, base+"/readyz")
		return code == http.StatusOK, body
	})
	assert.Contains(t, body, "ready\nwarning: at --scrub-rate 1MiB/s a pass over the fullest device's 1MiB takes 1s, longer than three --verify-interval (300ms)")
	assert.Contains(t, p.stderr(t), "the scrub cannot keep shards as fresh as --verify-interval asks")
	p.signal(t, syscall.SIGTERM)
	assert.Equal(t, exitOK, p.wait(t), p.stderr(t))
}
