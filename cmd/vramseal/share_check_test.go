package main

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/modeltest"
)

// TestShareCheckMapsEveryShardAndSeesWritesRefused runs "share check"
// beside a serving worker on simulated GPUs: every shard maps, hashes to
// its digest and refuses the write, one line each; an unknown shard fails
// the check with exit 1, and so does a missing --socket with exit 2.
func TestShareCheckMapsEveryShardAndSeesWritesRefused(t *testing.T) {
	t.Parallel() // a vramseal process of its own, in a directory of its own
	dir := t.TempDir()
	token := writeToken(t, dir)
	first, _ := modeltest.WriteRandomFile(t, dir, "layer0.bin", 1<<20)
	second, _ := modeltest.WriteRandomFile(t, dir, "layer1.bin", 3<<20+5)
	sock := filepath.Join(dir, "run", "share.sock")
	p := startVramseal(t, dir, append(smallRunFlags(dir, token), "--serve", sock, first, second)...)
	p.waitForLog(t, "serving leases")
	p.waitForLog(t, "every shard sealed and verified") // the socket serves shards as they are sealed

	check := runVramseal(t, dir, "share", "check", "--socket", sock)
	require.Equal(t, exitOK, check.code, "share check: %s%s", check.stdout, check.stderr)
	for _, id := range []string{"layer0.bin", "layer1.bin"} {
		assert.Regexp(t, `(?m)^`+id+` ok  [0-9.]+ [KM]iB memfd sha256 match; write refused: mprotect: .+; write\(2\): .+$`, check.stdout)
	}

	one := runVramseal(t, dir, "share", "check", "--socket", sock, "layer1.bin", "no-such-shard")
	assert.Equal(t, exitFailure, one.code, "a check with an unknown shard: %s", one.stdout)
	assert.Regexp(t, `(?m)^layer1.bin ok `, one.stdout)
	assert.Regexp(t, `(?m)^no-such-shard FAIL `, one.stdout)
	assert.Contains(t, one.stderr, "1 of 2 shard(s) failed")

	usage := runVramseal(t, dir, "share", "check")
	assert.Equal(t, exitUsage, usage.code)
	assert.Contains(t, usage.stderr, "needs --socket PATH")

	p.signal(t, syscall.SIGTERM)
	assert.Equal(t, exitOK, p.wait(t), "stderr:\n%s", p.stderr(t))
}
