package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultAuditLogFollowsStateDirectory(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "")
	assert.Equal(t, "./vramseal-audit.jsonl", defaultAuditLog())
	t.Setenv("STATE_DIRECTORY", "/var/lib/vramseal")
	assert.Equal(t, "/var/lib/vramseal/vramseal-audit.jsonl", defaultAuditLog())
	t.Setenv("STATE_DIRECTORY", "/var/lib/vramseal:/var/lib/other")
	assert.Equal(t, "/var/lib/vramseal/vramseal-audit.jsonl", defaultAuditLog(), "the first of several StateDirectory= entries")
}

func TestRunHelpShowsTheStateDirectoryDefault(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "/var/lib/vramseal")
	assert.Contains(t, helpOf(t, "run"), `(default "/var/lib/vramseal/vramseal-audit.jsonl")`)
}

func TestSimTokenIsKeptOnceBesideTheLogAndReadAfter(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "audit.jsonl")
	assert.Equal(t, filepath.Join(dir, "audit.token"), simTokenPath(log))

	first, path, created, err := simToken(log)
	require.NoError(t, err)
	assert.True(t, created)
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	require.NoError(t, os.WriteFile(log, []byte("a record\n"), 0o600))
	again, _, created, err := simToken(log)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, first, again, "the next run reads the kept token")

	require.NoError(t, os.Remove(path))
	_, _, _, err = simToken(log)
	assert.ErrorContains(t, err, "holds records written with a token this run was not given")
	assert.NoFileExists(t, path, "no new token for a log it cannot continue")
}
