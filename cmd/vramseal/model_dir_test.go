package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/modeltest"
	"github.com/vramseal/vramseal/model"
	"github.com/vramseal/vramseal/supervisor"
)

func TestAFileRewrittenDuringItsSealExitsAsUsageLikeASwapAtOpen(t *testing.T) {
	dir, files := modeltest.WriteDir(t, t.TempDir())
	const name = "model-00001-of-00003.safetensors"
	path := filepath.Join(dir, name)
	srcs, err := openModelFiles([]string{path}, "", "")
	require.NoError(t, err)
	t.Cleanup(func() { model.Close(srcs) })
	changed := append([]byte(nil), files[name]...)
	changed[20] ^= 1 // inside the JSON header, after it was checked
	require.NoError(t, os.WriteFile(path, changed, 0o600))
	ctx := context.Background()
	rig, err := supervisor.MakeRig(ctx, supervisor.RigConfig{Config: supervisor.Config{ChunkSize: 64 << 10}})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, rig.Stop(ctx)) })
	logger := slog.New(slog.DiscardHandler)

	_, err = sealModel(ctx, rig.Runtime, srcs, &progress{logger: logger}, logger)
	require.Error(t, err)
	assert.Equal(t, exitUsage, exitCodeOf(err, true), "as when the file is swapped while it is opened")
	assert.Equal(t, "model file "+path+" changed while it was being sealed: its header is not the one checked; seal it once nothing rewrites it", userMessage(err))
}
