package model_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/modeltest"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/model"
)

// openDir finds and opens the model directory dir.
func openDir(t *testing.T, dir string) (*model.Dir, []*model.Source) {
	t.Helper()
	d, err := model.FindDir([]string{dir}, nil)
	require.NoError(t, err)
	var files []model.File
	for _, p := range d.Paths() {
		files = append(files, model.File{Path: p, ID: model.ShardIDFromFileName(filepath.Base(p))})
	}
	srcs, err := model.OpenFiles(files, d.ModelRef(""))
	require.NoError(t, err)
	t.Cleanup(func() { model.Close(srcs) })
	return d, srcs
}

func TestFindDirReadsADirectoryWhoseNameLooksLikeAPattern(t *testing.T) {
	for _, name := range []string{"llama [4bit]", "model[v2", "m[12]", `a\b*?`} {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			src, _ := modeltest.WriteDir(t, parent)
			dir := filepath.Join(parent, name)
			require.NoError(t, os.Rename(src, dir))
			// A sibling the name would match as a pattern must not decide.
			decoy, _ := modeltest.WriteDir(t, t.TempDir())
			require.NoError(t, os.Rename(decoy, filepath.Join(parent, "m1")))
			require.NoError(t, os.WriteFile(filepath.Join(parent, "m1", "evil.safetensors"), []byte("x"), 0o600))

			d, err := model.FindDir([]string{dir}, nil)
			require.NoError(t, err)
			assert.Equal(t, []string{"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"}, d.Files)
		})
	}
}

func TestCheckIndexReadsTheWeightMapAsTransformersDoes(t *testing.T) {
	dir, _ := modeltest.WriteDir(t, t.TempDir())
	indexPath := filepath.Join(dir, model.SafetensorsIndexName)
	orig, err := os.ReadFile(indexPath)
	require.NoError(t, err)
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	require.NoError(t, json.Unmarshal(orig, &index))
	full, err := json.Marshal(index.WeightMap)
	require.NoError(t, err)
	partial := map[string]string{}
	for k, v := range index.WeightMap {
		partial[k] = v
	}
	delete(partial, "model.layers.1.mlp.down_proj.weight")
	short, err := json.Marshal(partial)
	require.NoError(t, err)
	dotted := map[string]string{}
	for k, v := range index.WeightMap {
		dotted[k] = "./" + v
	}
	dot, err := json.Marshal(dotted)
	require.NoError(t, err)

	refused := map[string]string{
		// transformers reads "weight_map" exactly; encoding/json let a
		// differently cased key stand in for it, or merged two.
		"a key in another case":    `{"Weight_Map":` + string(full) + `,"weight_map":` + string(short) + `}`,
		"a repeated weight_map":    `{"weight_map":` + string(short) + `,"weight_map":` + string(full) + `}`,
		"a tensor listed twice":    `{"weight_map":{"a":"x.safetensors","a":"y.safetensors"}}`,
		"bytes after the object":   `{"weight_map":` + string(full) + `} {}`,
		"a file climbing out":      `{"weight_map":{"model.layers.0.self_attn.q_proj.weight":"../model-00001-of-00003.safetensors"}}`,
		"only the cased key given": `{"WEIGHT_MAP":` + string(full) + `}`,
	}
	for name, body := range refused {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(indexPath, []byte(body), 0o600))
			d, srcs := openDir(t, dir)
			err := d.CheckIndex(srcs)
			require.Error(t, err)
			assert.ErrorIs(t, err, messages.ErrInvalidInput)
		})
	}
	t.Run("file names written with ./", func(t *testing.T) {
		require.NoError(t, os.WriteFile(indexPath, []byte(`{"metadata":{"total_size":1},"weight_map":`+string(dot)+"}\n"), 0o600))
		d, srcs := openDir(t, dir)
		assert.NoError(t, d.CheckIndex(srcs))
	})
}
