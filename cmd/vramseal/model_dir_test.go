package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
	"github.com/vramseal/vramseal/supervisor"
)

func TestOpenModelFileReadsTheTensorTable(t *testing.T) {
	model, files := testModelDir(t, t.TempDir())
	const name = "model-00002-of-00003.safetensors"
	src, err := openModelFile(filepath.Join(model, name), "")
	require.NoError(t, err)
	defer closeSources([]*modelSource{src})
	assert.Equal(t, name, src.relName)
	require.Len(t, src.tensors, 3)
	assert.Equal(t, "model.layers.1.self_attn.q_proj.weight", src.tensors[0].Name)
	got, err := io.ReadAll(src.data)
	require.NoError(t, err)
	assert.Equal(t, files[name], got, "the seal streams the whole file from its start")
}

// openThenRewriteHeader opens a model file of a test directory, then
// rewrites one byte of its JSON header, as if someone did between the check
// and the seal. It returns the source and the file's path.
func openThenRewriteHeader(t *testing.T) (*modelSource, string) {
	t.Helper()
	model, files := testModelDir(t, t.TempDir())
	path := filepath.Join(model, "model-00001-of-00003.safetensors")
	src, err := openModelFile(path, "")
	require.NoError(t, err)
	t.Cleanup(func() { closeSources([]*modelSource{src}) })
	changed := append([]byte(nil), files["model-00001-of-00003.safetensors"]...)
	changed[20] ^= 1 // inside the JSON header
	require.NoError(t, os.WriteFile(path, changed, 0o600))
	return src, path
}

func TestAFileRewrittenAfterItsHeaderWasCheckedDoesNotSeal(t *testing.T) {
	src, _ := openThenRewriteHeader(t)
	_, err := io.ReadAll(src.data)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "changed while it was being sealed")
	assert.ErrorIs(t, err, messages.ErrInvalidInput)
}

func TestAFileRewrittenDuringItsSealExitsAsUsageLikeASwapAtOpen(t *testing.T) {
	src, path := openThenRewriteHeader(t)
	sim, err := cuda.NewSim(cuda.SimConfig{Capacity: 64 << 20})
	require.NoError(t, err)
	key, err := sealer.DeriveKey([]byte("header-guard-test-token-0123"), "header-guard")
	require.NoError(t, err)
	t.Cleanup(key.Zero)
	ctx := context.Background()
	rt, err := supervisor.Start(ctx, supervisor.Config{
		Devices: []cuda.Device{sim}, Key: key, WorkerID: "header-guard", ChunkSize: 64 << 10, Audit: audit.NewMemory(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, rt.Stop(ctx)) })
	logger := slog.New(slog.DiscardHandler)

	_, err = sealSource(ctx, rt, src, 0, &progress{logger: logger}, logger)
	require.Error(t, err)
	assert.Equal(t, exitUsage, exitCodeOf(err, true), "as when the file is swapped while it is opened")
	assert.Equal(t, "model file "+path+" changed while it was being sealed: its header is not the one checked; seal it once nothing rewrites it", userMessage(err))
}

func TestOtherFormatsSealAsOpaqueBytes(t *testing.T) {
	path, data := writeRandomFile(t, t.TempDir(), "weights.bin", 1000)
	src, err := openModelFile(path, "")
	require.NoError(t, err)
	defer closeSources([]*modelSource{src})
	assert.Nil(t, src.tensors)
	got, err := io.ReadAll(src.data)
	require.NoError(t, err)
	assert.Equal(t, data, got)
}
