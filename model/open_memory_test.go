package model_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/model"
	"github.com/vramseal/vramseal/sealer"
)

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestOpenFilesKeepsAHeadersDigestNotItsBytes(t *testing.T) {
	const headerBytes, files = 4 << 20, 8
	table, err := model.LayoutSafetensors(map[string]string{"pad": strings.Repeat("x", headerBytes)},
		[]sealer.Tensor{{Name: "w", DType: "U8", Shape: []uint64{16}}})
	require.NoError(t, err)
	header, err := table.Header()
	require.NoError(t, err)
	dir := t.TempDir()
	first := filepath.Join(dir, "a.safetensors")
	require.NoError(t, os.WriteFile(first, append(header, make([]byte, 16)...), 0o600))
	var list []model.File
	for i := range files {
		p := filepath.Join(dir, string(rune('a'+i))+".safetensors")
		if i > 0 {
			require.NoError(t, os.Link(first, p)) // one header, many names
		}
		list = append(list, model.File{Path: p, ID: model.ShardIDFromFileName(filepath.Base(p))})
	}

	before := heapInUse()
	srcs, err := model.OpenFiles(list, "")
	require.NoError(t, err)
	defer model.Close(srcs)
	held := int64(heapInUse()) - int64(before)
	assert.Less(t, held, int64(headerBytes), "%d open files hold %d bytes: no copy of a %d-byte header each", files, held, headerBytes)
	runtime.KeepAlive(srcs)
}
