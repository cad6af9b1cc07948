package main

import (
	"io"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
			got := shardIDFromFileName(tt.name)
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
		id := shardIDFromFileName(name)
		if id == "" {
			return
		}
		if err := sealer.ValidateShardID(id); err != nil {
			t.Fatalf("shardIDFromFileName(%q) = %q: %v", name, id, err)
		}
	})
}

func TestOpenModelFilesNamesShardsAndPlacesThemInTheirModel(t *testing.T) {
	dir := t.TempDir()
	first, firstData := writeRandomFile(t, dir, "part 1.bin", 4096)
	second, _ := writeRandomFile(t, dir, "part 2.bin", 100)

	tests := []struct {
		name      string
		paths     []string
		id, model string
		wantIDs   []string
		wantTotal int
	}{
		{name: "named after files", paths: []string{first, second}, wantIDs: []string{"part_1.bin", "part_2.bin"}},
		{name: "shards of a model", paths: []string{first, second}, model: "llama", wantIDs: []string{"part_1.bin", "part_2.bin"}, wantTotal: 2},
		{name: "ID given", paths: []string{first}, id: "layer-0", wantIDs: []string{"layer-0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srcs, err := openModelFiles(tt.paths, tt.id, tt.model)
			require.NoError(t, err)
			t.Cleanup(func() { closeSources(srcs) })
			require.Len(t, srcs, len(tt.wantIDs))
			for i, src := range srcs {
				assert.Equal(t, tt.wantIDs[i], src.id)
				assert.Equal(t, tt.paths[i], src.name)
				assert.Equal(t, tt.model, src.modelRef)
				assert.Equal(t, tt.wantTotal, src.total)
				if tt.wantTotal > 0 {
					assert.Equal(t, i, src.index)
				}
			}
			got, err := io.ReadAll(srcs[0].data)
			require.NoError(t, err)
			assert.Equal(t, firstData, got, "the source streams the file")
			assert.Equal(t, int64(len(firstData)), srcs[0].size)
		})
	}
}

func TestOpenModelFilesRefusesBadIDsAndFiles(t *testing.T) {
	dir := t.TempDir()
	good, _ := writeRandomFile(t, dir, "good.bin", 10)
	noName, _ := writeRandomFile(t, dir, "___", 10)
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600), "a named pipe exists but is not a regular file")

	tests := []struct {
		name      string
		paths     []string
		id, model string
		wantErr   string
	}{
		{name: "bad ID", paths: []string{good}, id: "../etc", wantErr: "--id: "},
		{name: "name without letters", paths: []string{noName}, wantErr: "pass --id ID"},
		{name: "not a regular file", paths: []string{fifo}, wantErr: "is not a regular file"},
		{name: "model ref with a control character", paths: []string{good}, model: "a\x00b", wantErr: "--model-ref: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srcs, err := openModelFiles(tt.paths, tt.id, tt.model)
			require.Error(t, err)
			assert.Nil(t, srcs)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.Equal(t, exitUsage, exitCodeOf(err, true))
		})
	}
}
