package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStressCommand(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	small := []string{"stress", "--devices", "2", "--seals", "200", "--concurrency", "20", "--seed", "3"}
	t.Run("json", func(t *testing.T) {
		res := runVramseal(t, t.TempDir(), append(small, "--faults", "alloc=0.05,copy=0.05,read=0.05,bitflip=0.02,lost=0.01", "--json")...)
		require.Equal(t, exitOK, res.code, res.stderr)
		var report struct {
			Violations *int `json:"violations"`
			Faults     map[string]struct {
				Injected int `json:"injected"`
				Detected int `json:"detected"`
			} `json:"faults"`
		}
		require.NoError(t, json.Unmarshal([]byte(res.stdout), &report), res.stdout)
		require.NotNil(t, report.Violations)
		assert.Zero(t, *report.Violations)
		for _, kind := range []string{"alloc", "copy", "read", "bitflip", "lost"} {
			require.Contains(t, report.Faults, kind)
			assert.Equal(t, report.Faults[kind].Injected, report.Faults[kind].Detected, kind)
		}
	})
	t.Run("table", func(t *testing.T) {
		res := runVramseal(t, t.TempDir(), append(small, "--faults", "none")...)
		require.Equal(t, exitOK, res.code, res.stderr)
		assert.Regexp(t, `(?m)^seal\s+200\s+0\s`, res.stdout)
		assert.Regexp(t, `(?m)^bitflip\s+0\s+0$`, res.stdout)
		assert.Contains(t, res.stdout, "violations: 0")
	})
	bad := []struct {
		name    string
		args    []string
		mention string
	}{
		{"unknown fault", []string{"stress", "--faults", "flood=1"}, `unknown kind "flood"`},
		{"rate above one", []string{"stress", "--faults", "read=2"}, "probability"},
		{"no seals", []string{"stress", "--seals", "0"}, "--seals 0: need at least 1"},
		{"no callers", []string{"stress", "--concurrency", "-1"}, "--concurrency -1: need at least 1"},
		{"argument", []string{"stress", "now"}, "unknown command"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			res := runVramseal(t, t.TempDir(), tt.args...)
			assert.Equal(t, exitUsage, res.code)
			assert.Contains(t, res.stderr, tt.mention)
			assert.Empty(t, res.stdout)
		})
	}
}

func TestBenchCommandRefusesArguments(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	res := runVramseal(t, t.TempDir(), "bench", "fast")
	assert.Equal(t, exitUsage, res.code)
	assert.Contains(t, res.stderr, "unknown command")
}
