package main

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/modeltest"
	"github.com/vramseal/vramseal/model"
)

func TestOpenModelFilesNamesShardsAfterTheirFilesOrTheIDFlag(t *testing.T) {
	dir := t.TempDir()
	first, firstData := modeltest.WriteRandomFile(t, dir, "part 1.bin", 4096)
	second, _ := modeltest.WriteRandomFile(t, dir, "part 2.bin", 100)

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
			t.Cleanup(func() { model.Close(srcs) })
			require.Len(t, srcs, len(tt.wantIDs))
			for i, src := range srcs {
				assert.Equal(t, tt.wantIDs[i], src.ID)
				assert.Equal(t, tt.paths[i], src.Name)
				assert.Equal(t, tt.model, src.ModelRef)
				assert.Equal(t, tt.wantTotal, src.Total)
				if tt.wantTotal > 0 {
					assert.Equal(t, i, src.Index)
				}
			}
			assert.Equal(t, int64(len(firstData)), srcs[0].Size)
		})
	}
}

func TestOpenModelFilesRefusesBadIDsAndFiles(t *testing.T) {
	dir := t.TempDir()
	good, _ := modeltest.WriteRandomFile(t, dir, "good.bin", 10)
	noName, _ := modeltest.WriteRandomFile(t, dir, "___", 10)
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
		{name: "missing", paths: []string{filepath.Join(dir, "nope.bin")}, wantErr: "does not exist; check the path, or pass no files to seal the demo model"},
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
