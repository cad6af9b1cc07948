package model_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/modeltest"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/model"
	"github.com/vramseal/vramseal/supervisor"
)

// testRig starts a runtime over devices simulated GPUs of capacity bytes
// each, with 64 KiB chunks, and stops it when the test ends.
func testRig(t *testing.T, devices int, capacity int64) *supervisor.Rig {
	t.Helper()
	rig, err := supervisor.MakeRig(context.Background(), supervisor.RigConfig{
		Capacities: slices.Repeat([]int64{capacity}, devices),
		Config:     supervisor.Config{ChunkSize: 64 << 10},
	})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, rig.Stop(context.Background())) })
	return rig
}

func TestSealAllSealsEverySourceOntoItsPlaceAndVerifyAllProvesThem(t *testing.T) {
	rig := testRig(t, 2, 1<<20)
	ctx := context.Background()
	var srcs []*model.Source
	data := map[string][]byte{}
	for i, size := range []int{300 << 10, 200 << 10, 100 << 10} {
		b := bytes.Repeat([]byte{byte(i + 1)}, size)
		src := model.NewSource([]string{"a", "b", "c"}[i], int64(size), bytes.NewReader(b))
		src.ModelRef, src.Index, src.Total = "m", i, 3
		srcs = append(srcs, src)
		data[src.ID] = b
	}
	var mu sync.Mutex
	tracked := map[string]int{} // shard -> device
	ended := 0
	shards, err := model.SealAll(ctx, rig.Runtime, srcs, model.SealOptions{Track: func(src *model.Source, device int, r io.Reader) (io.Reader, func()) {
		mu.Lock()
		defer mu.Unlock()
		tracked[src.ID] = device
		return r, func() {
			mu.Lock()
			defer mu.Unlock()
			ended++
		}
	}})
	require.NoError(t, err)
	require.Len(t, shards, 3)
	assert.Equal(t, map[string]int{"a": 0, "b": 1, "c": 1}, tracked, "each onto the device with the most left, as model.Place says")
	assert.Equal(t, 3, ended, "every tracked seal ended")
	for i, s := range shards {
		assert.Equal(t, srcs[i].ID, s.ID, "shards in source order")
		assert.Equal(t, tracked[s.ID], s.Device)
		assert.Equal(t, "m", s.ModelRef)
		sum := sha256.Sum256(data[s.ID])
		assert.Equal(t, hex.EncodeToString(sum[:]), s.Digest)
	}
	require.NoError(t, model.VerifyAll(ctx, rig.Runtime, shards, nil))

	// A source that fits nowhere any more fails before anything is sealed.
	_, err = model.SealAll(ctx, rig.Runtime, []*model.Source{model.NewSource("d", 1<<20, bytes.NewReader(make([]byte, 1<<20)))}, model.SealOptions{})
	assert.ErrorIs(t, err, messages.ErrInsufficientVRAM)
}

func TestSealAllRefusesAFileRewrittenDuringItsSeal(t *testing.T) {
	rig := testRig(t, 1, 4<<20)
	src, path := openThenRewriteHeader(t)
	shards, err := model.SealAll(context.Background(), rig.Runtime, []*model.Source{src}, model.SealOptions{})
	require.Error(t, err)
	assert.Empty(t, shards)
	var fe *model.FileError
	require.ErrorAs(t, err, &fe, "the cause, not the runtime's words for a failed read")
	assert.Equal(t, path, fe.Path)
	assert.Zero(t, rig.Sims[0].Outstanding(), "the failed seal holds nothing")
}

func TestAttachedDigestsRefuseAFileThatIsNotThePublishedModel(t *testing.T) {
	rig := testRig(t, 1, 4<<20)
	dir, files := modeltest.WriteDir(t, t.TempDir())
	d, err := model.FindDir([]string{dir}, nil)
	require.NoError(t, err)
	paths := d.Paths()
	var list []model.File
	for _, p := range paths {
		list = append(list, model.File{Path: p, ID: model.ShardIDFromFileName(filepath.Base(p))})
	}
	srcs, err := model.OpenFiles(list, d.ModelRef(""))
	require.NoError(t, err)
	t.Cleanup(func() { model.Close(srcs) })
	require.NoError(t, d.CheckIndex(srcs))

	digests := model.NewDigestList()
	for name, b := range files {
		sum := sha256.Sum256(b)
		if name == "model-00002-of-00003.safetensors" {
			sum[0] ^= 1 // published, but not what the file holds
		}
		require.NoError(t, digests.Add(name, hex.EncodeToString(sum[:]), "test"))
	}
	var id model.Identity
	id.AddList("the test's digests", digests, false)
	require.NoError(t, id.Attach(srcs, d, model.AttachOptions{}))

	_, err = model.SealAll(context.Background(), rig.Runtime, srcs, model.SealOptions{})
	require.Error(t, err)
	assert.ErrorIs(t, err, messages.ErrModelRejected)
	assert.Contains(t, err.Error(), paths[1], "names the file that differs")
}
