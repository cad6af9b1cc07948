package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

func TestAFileRewrittenAfterItsHeaderWasCheckedDoesNotSeal(t *testing.T) {
	model, files := testModelDir(t, t.TempDir())
	path := filepath.Join(model, "model-00001-of-00003.safetensors")
	src, err := openModelFile(path, "")
	require.NoError(t, err)
	defer closeSources([]*modelSource{src})

	changed := append([]byte(nil), files["model-00001-of-00003.safetensors"]...)
	changed[20] ^= 1 // inside the JSON header
	require.NoError(t, os.WriteFile(path, changed, 0o600))
	_, err = io.ReadAll(src.data)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "changed while it was being sealed")
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
