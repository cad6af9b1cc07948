package model_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/modeltest"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/model"
)

const shard1 = "model-00001-of-00003.safetensors"

// openGiven opens the model files at paths, as given one by one.
func openGiven(t *testing.T, paths ...string) []*model.Source {
	t.Helper()
	var files []model.File
	for _, p := range paths {
		files = append(files, model.File{Path: p, ID: model.ShardIDFromFileName(filepath.Base(p))})
	}
	srcs, err := model.OpenFiles(files, "")
	require.NoError(t, err)
	t.Cleanup(func() { model.Close(srcs) })
	return srcs
}

// listAt writes a digest list at path and reads it as --sha256sums does.
func listAt(t *testing.T, path, body string) *model.DigestList {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	l, err := model.ReadDigestList(strings.NewReader(body), path)
	require.NoError(t, err)
	require.NoError(t, l.RelativeTo(path))
	return l
}

func hexOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestAttachMatchesDigestListsByThePathGiven(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	require.NoError(t, os.Mkdir("models", 0o700))
	_, files := modeltest.WriteDir(t, "models")
	given := filepath.Join("models", "tiny-llm", shard1)
	sum := hexOf(files[shard1])
	seal := func(t *testing.T, l *model.DigestList, allowUnlisted bool) error {
		t.Helper()
		rig := testRig(t, 1, 4<<20)
		srcs := openGiven(t, given)
		var id model.Identity
		id.AddList("--sha256sums", l, false)
		if err := id.Attach(srcs, nil, model.AttachOptions{AllowUnlisted: allowUnlisted}); err != nil {
			return err
		}
		_, err := model.SealAll(context.Background(), rig.Runtime, srcs, model.SealOptions{})
		return err
	}

	t.Run("as sha256sum models/tiny-llm/* writes it", func(t *testing.T) {
		l := listAt(t, "sums/SHA256SUMS", sum+"  models/tiny-llm/"+shard1+"\n")
		assert.NoError(t, seal(t, l, false))
	})
	t.Run("relative to the list's directory", func(t *testing.T) {
		l := listAt(t, filepath.Join("models", "tiny-llm", "SHA256SUMS"), sum+"  "+shard1+"\n")
		assert.NoError(t, seal(t, l, false))
	})
	t.Run("a base name alone names no file elsewhere", func(t *testing.T) {
		l := listAt(t, "sums/SHA256SUMS", hexOf([]byte("other bytes"))+"  "+shard1+"\n")
		err := seal(t, l, false)
		require.ErrorIs(t, err, messages.ErrModelRejected)
		assert.Contains(t, err.Error(), "lists no digest for")
	})
	t.Run("a tampered file under the listed path is refused, even with --allow-unlisted", func(t *testing.T) {
		l := listAt(t, "sums/SHA256SUMS", hexOf([]byte("the published bytes"))+"  models/tiny-llm/"+shard1+"\n")
		err := seal(t, l, true)
		require.ErrorIs(t, err, messages.ErrModelRejected)
	})
}

func TestAttachRefusesAnExpectationThatNamesNoFile(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	require.NoError(t, os.Mkdir("models", 0o700))
	_, files := modeltest.WriteDir(t, "models")
	given := filepath.Join("models", "tiny-llm", shard1)
	expect := func(t *testing.T, name, sum string) error {
		t.Helper()
		rig := testRig(t, 1, 4<<20)
		srcs := openGiven(t, given)
		l := model.NewDigestList()
		n, s, err := model.ParseExpectSHA256(name + "=" + sum)
		require.NoError(t, err)
		require.NoError(t, l.Add(n, s, "--expect-sha256"))
		var id model.Identity
		id.AddList("--expect-sha256", l, true)
		if err := id.Attach(srcs, nil, model.AttachOptions{AllowUnlisted: true}); err != nil {
			return err
		}
		_, err = model.SealAll(context.Background(), rig.Runtime, srcs, model.SealOptions{})
		return err
	}
	require.NoError(t, expect(t, "models/tiny-llm/"+shard1, hexOf(files[shard1])))
	err := expect(t, "models/tiny-llm/"+shard1, hexOf([]byte("x")))
	assert.ErrorIs(t, err, messages.ErrModelRejected, "the expectation is checked, by its path")
	err = expect(t, "models/tiny-lm/"+shard1, hexOf(files[shard1]))
	require.ErrorIs(t, err, messages.ErrInvalidInput, "a typo is an error, not a check turned off")
	assert.Contains(t, err.Error(), `"models/tiny-lm/`)
}
