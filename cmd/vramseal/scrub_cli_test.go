package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/modeltest"
)

func TestRunLogsEveryScrubPassAndSumsUpAtStop(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	fileA, _ := modeltest.WriteRandomFile(t, dir, "a.bin", 1<<20)
	fileB, _ := modeltest.WriteRandomFile(t, dir, "b.bin", 512<<10)

	res := runVramseal(t, dir, append(smallRunFlags(dir, token), "--verify-interval", "100ms", "--duration", "1500ms", "--listen", "", fileA, fileB)...)
	require.Equal(t, exitOK, res.code, "stderr:\n%s", res.stderr)

	passes := logsWithMsg(res.stderr, "scrub pass")
	require.GreaterOrEqual(t, len(passes), 2, "a line per pass; stderr:\n%s", res.stderr)
	var bytes int64
	for _, p := range passes {
		for _, key := range []string{"device", "shards", "bytes", "elapsed", "rate", "next_pass_in"} {
			assert.Contains(t, p, key)
		}
		assert.EqualValues(t, 1, p["shards"], "one shard per device")
		assert.Equal(t, "100ms", p["next_pass_in"])
		size, err := parseSize(p["bytes"].(string))
		require.NoError(t, err)
		bytes += size
	}

	summary := logsWithMsg(res.stderr, "scrub summary")
	require.Len(t, summary, 1)
	assert.EqualValues(t, len(passes), summary[0]["passes"], "the summary counts the passes logged")
	assert.Equal(t, formatSize(bytes), summary[0]["bytes_rehashed"])
	assert.EqualValues(t, 0, summary[0]["mismatches"])
	last := map[string]bool{}
	for _, l := range logsWithMsg(res.stderr, "shard last fully verified") {
		last[l["shard"].(string)] = true
		assert.NotEmpty(t, l["at"])
	}
	assert.Equal(t, map[string]bool{"a.bin": true, "b.bin": true}, last)
}

func TestRunWithAPlantedFlipItCannotCatchWarnsAndExitsOne(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	tests := []struct {
		name  string
		flags []string
		warn  string
		err   string
	}{
		{
			name:  "no scrub",
			flags: []string{"--verify-interval", "0", "--sim-fault", "bitflip@0s", "--duration", "300ms"},
			warn:  "sim-fault: scrubbing is off",
			err:   "was NOT detected: scrubbing was off (--verify-interval 0)",
		},
		{
			name:  "too short a run",
			flags: []string{"--verify-interval", "1m", "--sim-fault", "bitflip@0s", "--duration", "300ms", "--seed", "7"},
			warn:  "sim-fault: --duration may end before",
			err:   "was NOT detected: the run ended",
		},
		{
			name:  "ended before the flip",
			flags: []string{"--sim-fault", "bitflip@1h", "--duration", "100ms"},
			warn:  "sim-fault: --duration may end before",
			err:   "the run ended before the bit flip planned for 1h0m0s after sealing was made",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			token := writeToken(t, dir)
			file, _ := modeltest.WriteRandomFile(t, dir, "w.bin", 256<<10)
			res := runVramseal(t, dir, append(append(smallRunFlags(dir, token), "--listen", ""), append(tt.flags, file)...)...)

			assert.Equal(t, exitFailure, res.code, "stderr:\n%s", res.stderr)
			assert.Contains(t, res.stderr, tt.warn)
			planned := logsWithMsg(res.stderr, "sim-fault: one bit flip planned")
			require.Len(t, planned, 1)
			assert.Equal(t, "w.bin", planned[0]["shard"])
			assert.NotEmpty(t, planned[0]["seed"], "the seed is logged, so the run can be repeated")
			errLine := lastLine(res.stderr)
			assert.True(t, strings.HasPrefix(errLine, "vramseal: --sim-fault: "), errLine)
			assert.Contains(t, errLine, tt.err)
			assert.FileExists(t, filepath.Join(dir, "audit.jsonl"))
		})
	}
}

func TestRunSeedChoosesTheSameFlipEveryTime(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	var files []string
	for _, name := range []string{"a.bin", "b.bin", "c.bin", "d.bin"} {
		f, _ := modeltest.WriteRandomFile(t, dir, name, 128<<10)
		files = append(files, f)
	}
	plan := func(seed string) map[string]any {
		res := runVramseal(t, dir, append(append(smallRunFlags(dir, token), "--listen", "", "--verify-interval", "0",
			"--sim-fault", "bitflip@1h", "--duration", "1ms", "--seed", seed), files...)...)
		planned := logsWithMsg(res.stderr, "sim-fault: one bit flip planned")
		require.Len(t, planned, 1, res.stderr)
		return planned[0]
	}
	first := plan("12345")
	again := plan("12345")
	for _, key := range []string{"shard", "device", "chunk", "offset", "bit", "seed"} {
		assert.Equal(t, first[key], again[key], key)
	}
	assert.EqualValues(t, 12345, first["seed"])
}
