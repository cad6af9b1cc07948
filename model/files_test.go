package model_test

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/modeltest"
	"github.com/vramseal/vramseal/internal/safefile"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/model"
	"github.com/vramseal/vramseal/sealer"
)

func TestShardIDFromFileNameKeepsOnlyTheAllowedCharset(t *testing.T) {
	tests := []struct {
		name, want string
	}{
		{"model-00001-of-00002.safetensors", "model-00001-of-00002.safetensors"},
		{"weights b.bin", "weights_b.bin"},
		{"..hidden", "hidden"},
		{".env", "env"},
		{"_-.x", "x"},
		{"a..b...c", "a.b.c"},
		{"модель.bin", "bin"},
		{"ä.bin", "bin"},
		{"layer/0", "layer_0"},
		{"___", ""},
		{"", ""},
		{strings.Repeat("a", 300), strings.Repeat("a", sealer.MaxShardIDLen)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := model.ShardIDFromFileName(tt.name)
			assert.Equal(t, tt.want, got)
			if got != "" {
				assert.NoError(t, sealer.ValidateShardID(got))
			}
		})
	}
}

func FuzzShardIDFromFileName(f *testing.F) {
	for _, seed := range []string{"model.bin", "..", "a..b", ".x", "модель", "\x00\xff", strings.Repeat("x.", 200)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		id := model.ShardIDFromFileName(name)
		if id == "" {
			return
		}
		if err := sealer.ValidateShardID(id); err != nil {
			t.Fatalf("ShardIDFromFileName(%q) = %q: %v", name, id, err)
		}
	})
}

func TestOpenFilesPlacesThemInTheirModel(t *testing.T) {
	dir := t.TempDir()
	first, firstData := modeltest.WriteRandomFile(t, dir, "part 1.bin", 4096)
	second, _ := modeltest.WriteRandomFile(t, dir, "part 2.bin", 100)
	files := []model.File{{Path: first, ID: "part-1"}, {Path: second, ID: "part-2"}}

	for _, ref := range []string{"", "llama"} {
		t.Run("model "+ref, func(t *testing.T) {
			srcs, err := model.OpenFiles(files, ref)
			require.NoError(t, err)
			t.Cleanup(func() { model.Close(srcs) })
			require.Len(t, srcs, 2)
			for i, src := range srcs {
				assert.Equal(t, files[i].ID, src.ID)
				assert.Equal(t, files[i].Path, src.Name)
				assert.Equal(t, filepath.Base(files[i].Path), src.RelName)
				assert.Equal(t, ref, src.ModelRef)
				if ref != "" {
					assert.Equal(t, i, src.Index)
					assert.Equal(t, 2, src.Total)
				} else {
					assert.Zero(t, src.Total, "a shard of no model")
				}
			}
			got, err := io.ReadAll(model.SourceData(srcs[0]))
			require.NoError(t, err)
			assert.Equal(t, firstData, got, "the source streams the file")
			assert.Equal(t, int64(len(firstData)), srcs[0].Size)
		})
	}
}

func TestOpenFilesRefusesWhatCannotBeSealed(t *testing.T) {
	dir := t.TempDir()
	good, _ := modeltest.WriteRandomFile(t, dir, "good.bin", 10)
	empty := filepath.Join(dir, "empty.bin")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600), "a named pipe exists but is not a regular file")

	tests := []struct {
		name    string
		files   []model.File
		ref     string
		cause   error // also matched, besides messages.ErrInvalidInput
		wantErr string
	}{
		{name: "missing", files: []model.File{{Path: filepath.Join(dir, "nope.bin"), ID: "a"}}, cause: fs.ErrNotExist, wantErr: "does not exist"},
		{name: "not a regular file", files: []model.File{{Path: fifo, ID: "a"}}, cause: safefile.ErrNotRegular, wantErr: "is not a regular file"},
		{name: "a directory", files: []model.File{{Path: dir, ID: "a"}}, cause: safefile.ErrNotRegular, wantErr: "is a directory; pass the files in it"},
		{name: "empty", files: []model.File{{Path: empty, ID: "a"}}, wantErr: "is empty"},
		{name: "bad ID", files: []model.File{{Path: good, ID: "../etc"}}, wantErr: "shard ID"},
		{name: "the same ID twice", files: []model.File{{Path: good, ID: "a"}, {Path: good, ID: "a"}}, wantErr: `both make shard ID "a"`},
		{name: "model ref with a control character", files: []model.File{{Path: good, ID: "a"}}, ref: "a\x00b", wantErr: "model ref"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srcs, err := model.OpenFiles(tt.files, tt.ref)
			require.Error(t, err)
			assert.Nil(t, srcs)
			assert.ErrorIs(t, err, messages.ErrInvalidInput)
			if tt.cause != nil {
				assert.ErrorIs(t, err, tt.cause)
			}
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestOpenFileReadsTheTensorTable(t *testing.T) {
	dir, files := modeltest.WriteDir(t, t.TempDir())
	const name = "model-00002-of-00003.safetensors"
	src, err := model.OpenFile(filepath.Join(dir, name), "s")
	require.NoError(t, err)
	defer model.Close([]*model.Source{src})
	assert.Equal(t, name, src.RelName)
	require.Len(t, src.Tensors, 3)
	assert.Equal(t, "model.layers.1.self_attn.q_proj.weight", src.Tensors[0].Name)
	got, err := io.ReadAll(model.SourceData(src))
	require.NoError(t, err)
	assert.Equal(t, files[name], got, "the seal streams the whole file from its start")
}

func TestOpenFileRefusesABrokenSafetensorsHeader(t *testing.T) {
	path, _ := modeltest.WriteRandomFile(t, t.TempDir(), "broken.safetensors", 1000)
	_, err := model.OpenFile(path, "s")
	require.Error(t, err)
	assert.ErrorIs(t, err, messages.ErrInvalidInput)
	assert.Contains(t, err.Error(), "model file "+path)
}

// openThenRewriteHeader opens a model file of a test directory, then
// rewrites one byte of its JSON header, as if someone did between the check
// and the seal. It returns the source and the file's path.
func openThenRewriteHeader(t *testing.T) (*model.Source, string) {
	t.Helper()
	dir, files := modeltest.WriteDir(t, t.TempDir())
	path := filepath.Join(dir, "model-00001-of-00003.safetensors")
	src, err := model.OpenFile(path, "s")
	require.NoError(t, err)
	t.Cleanup(func() { model.Close([]*model.Source{src}) })
	changed := append([]byte(nil), files["model-00001-of-00003.safetensors"]...)
	changed[20] ^= 1 // inside the JSON header
	require.NoError(t, os.WriteFile(path, changed, 0o600))
	return src, path
}

func TestAFileRewrittenAfterItsHeaderWasCheckedDoesNotSeal(t *testing.T) {
	src, path := openThenRewriteHeader(t)
	_, err := io.ReadAll(model.SourceData(src))
	require.Error(t, err)
	var fe *model.FileError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, path, fe.Path)
	assert.Contains(t, err.Error(), "changed while it was being sealed")
	assert.ErrorIs(t, err, messages.ErrInvalidInput)
}

func TestOtherFormatsSealAsOpaqueBytes(t *testing.T) {
	path, data := modeltest.WriteRandomFile(t, t.TempDir(), "weights.bin", 1000)
	src, err := model.OpenFile(path, "s")
	require.NoError(t, err)
	defer model.Close([]*model.Source{src})
	assert.Nil(t, src.Tensors)
	got, err := io.ReadAll(model.SourceData(src))
	require.NoError(t, err)
	assert.Equal(t, data, got)
}
