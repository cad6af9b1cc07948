// Package modeltest writes model files for tests: a small sharded
// safetensors model with its index, and files of random bytes. It is for
// tests only.
package modeltest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/model"
	"github.com/vramseal/vramseal/sealer"
)

// WriteDir writes a three-file safetensors model with its index into a new
// directory "tiny-llm" under dir, and returns the directory and each file's
// bytes by name. File i holds three BF16 tensors of layer i.
func WriteDir(t testing.TB, dir string) (string, map[string][]byte) {
	t.Helper()
	path := filepath.Join(dir, "tiny-llm")
	require.NoError(t, os.Mkdir(path, 0o700))
	files := map[string][]byte{}
	weightMap := map[string]string{}
	for i := range 3 {
		name := fmt.Sprintf("model-%05d-of-00003.safetensors", i+1)
		var tensors []sealer.Tensor
		for _, part := range []string{"self_attn.q_proj.weight", "mlp.down_proj.weight", "input_layernorm.weight"} {
			tensors = append(tensors, sealer.Tensor{Name: fmt.Sprintf("model.layers.%d.%s", i, part), DType: "BF16", Shape: []uint64{256, 512}})
		}
		table, err := model.LayoutSafetensors(map[string]string{"format": "pt"}, tensors)
		require.NoError(t, err)
		header, err := table.Header()
		require.NoError(t, err)
		data := make([]byte, table.DataSize())
		rand.Read(data)
		files[name] = append(header, data...)
		require.NoError(t, os.WriteFile(filepath.Join(path, name), files[name], 0o600))
		for _, x := range table.Tensors {
			weightMap[x.Name] = name
		}
	}
	index, err := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 0}, "weight_map": weightMap})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(path, model.SafetensorsIndexName), index, 0o600))
	return path, files
}

// WriteHFDir writes a model directory laid out as the Hugging Face Hub
// publishes one: WriteDir's three shards and index, and a config,
// generation config and tokenizer files. It returns the directory and
// every file's bytes by name (the index included).
func WriteHFDir(t testing.TB, dir string) (string, map[string][]byte) {
	t.Helper()
	path, files := WriteDir(t, dir)
	index, err := os.ReadFile(filepath.Join(path, model.SafetensorsIndexName))
	require.NoError(t, err)
	files[model.SafetensorsIndexName] = index
	for name, body := range map[string]string{
		"config.json":             `{"architectures":["LlamaForCausalLM"],"hidden_size":512,"num_hidden_layers":3,"torch_dtype":"bfloat16"}`,
		"generation_config.json":  `{"bos_token_id":1,"eos_token_id":2}`,
		"tokenizer.json":          `{"version":"1.0","model":{"type":"BPE","vocab":{"a":0,"b":1}}}`,
		"tokenizer_config.json":   `{"tokenizer_class":"LlamaTokenizer"}`,
		"special_tokens_map.json": `{"bos_token":"<s>","eos_token":"</s>"}`,
	} {
		files[name] = []byte(body)
		require.NoError(t, os.WriteFile(filepath.Join(path, name), files[name], 0o600))
	}
	return path, files
}

// WriteRandomFile writes size random bytes to dir/name and returns the path
// and the bytes.
func WriteRandomFile(t testing.TB, dir, name string, size int) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path, data
}

// Capacities answers a runtime's Devices and Capacity (model.Capacities)
// from a fixed table, one entry per device.
type Capacities []messages.Capacity

// Devices is the number of entries.
func (c Capacities) Devices() int { return len(c) }

// Capacity is the device's entry.
func (c Capacities) Capacity(_ context.Context, device int) (messages.Capacity, error) {
	return c[device], nil
}
