package safefile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openBound is how long an open may take before the test calls it a hang:
// a FIFO open that blocks would never return.
const openBound = 10 * time.Second

// openWithin runs Open, failing the test if it hangs.
func openWithin(t *testing.T, path string, opts Options) (*os.File, os.FileInfo, error) {
	t.Helper()
	type result struct {
		f    *os.File
		info os.FileInfo
		err  error
	}
	done := make(chan result, 1)
	go func() {
		f, info, err := Open(path, opts)
		done <- result{f, info, err}
	}()
	select {
	case r := <-done:
		return r.f, r.info, r.err
	case <-time.After(openBound):
		// Unblock the open by opening the FIFO's other end, so that no
		// goroutine outlives the test.
		peer, err := os.OpenFile(path, os.O_RDWR, 0)
		if err == nil {
			defer peer.Close()
		}
		r := <-done
		if r.f != nil {
			r.f.Close()
		}
		require.FailNow(t, "Open blocked", path)
		return nil, nil, nil
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	require.NoError(t, syscall.Mkfifo(path, 0o600))
}

func TestOpenReadsARegularFileFromItsDescriptor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(path, []byte("hello"), 0o600))
	f, info, err := openWithin(t, path, Options{Private: true})
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, int64(5), info.Size())
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(b))
}

func TestOpenRefusesWhatIsNotARegularFileWithoutBlocking(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	mkfifo(t, fifo)
	for name, opts := range map[string]Options{
		"read":              {},
		"read-write append": {Flag: os.O_RDWR | os.O_APPEND | os.O_CREATE, Perm: 0o600},
		"write only":        {Flag: os.O_WRONLY},
	} {
		t.Run("FIFO, "+name, func(t *testing.T) {
			f, _, err := openWithin(t, fifo, opts)
			assert.Nil(t, f)
			assert.ErrorIs(t, err, ErrNotRegular)
		})
	}
	t.Run("directory", func(t *testing.T) {
		_, _, err := openWithin(t, dir, Options{})
		assert.ErrorIs(t, err, ErrNotRegular)
	})
	t.Run("device", func(t *testing.T) {
		_, _, err := openWithin(t, os.DevNull, Options{})
		assert.ErrorIs(t, err, ErrNotRegular)
	})
	t.Run("missing", func(t *testing.T) {
		_, _, err := openWithin(t, filepath.Join(dir, "nope"), Options{})
		assert.ErrorIs(t, err, fs.ErrNotExist)
	})
}

func TestOpenRefusesAFileSwappedBetweenCheckAndOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.bin")
	tests := map[string]struct {
		swap func()
		want error
	}{
		"for a FIFO": {func() {
			require.NoError(t, os.Remove(path))
			mkfifo(t, path)
		}, ErrNotRegular},
		"for another file": {func() {
			other := filepath.Join(dir, "other.bin")
			require.NoError(t, os.WriteFile(other, []byte("forged"), 0o600))
			require.NoError(t, os.Rename(other, path))
		}, ErrChanged},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			os.Remove(path)
			require.NoError(t, os.WriteFile(path, []byte("weights"), 0o600))
			betweenCheckAndOpen = tt.swap
			defer func() { betweenCheckAndOpen = func() {} }()
			f, _, err := openWithin(t, path, Options{})
			assert.Nil(t, f)
			assert.ErrorIs(t, err, tt.want)
		})
	}
}

func TestOpenPrivateRefusesAFileOthersMayRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(path, []byte("secret"), 0o600))
	require.NoError(t, os.Chmod(path, 0o640))
	_, _, err := openWithin(t, path, Options{Private: true})
	assert.ErrorIs(t, err, ErrNotPrivate)
	assert.ErrorContains(t, err, "0640")

	f, _, err := openWithin(t, path, Options{})
	require.NoError(t, err, "only Private asks for it")
	f.Close()
}

func TestOpenCreatesWhenAsked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	f, info, err := openWithin(t, path, Options{Flag: os.O_RDWR | os.O_CREATE | os.O_APPEND, Perm: 0o600, Private: true})
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

func TestReadFileReadsSmallRegularFilesOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(path, []byte("0123456789"), 0o644))
	b, err := ReadFile(path, 10)
	require.NoError(t, err)
	assert.Equal(t, "0123456789", string(b))

	_, err = ReadFile(path, 9)
	assert.ErrorIs(t, err, ErrTooLarge)
	fifo := filepath.Join(dir, "fifo")
	mkfifo(t, fifo)
	done := make(chan error, 1)
	go func() { _, err := ReadFile(fifo, 10); done <- err }()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, ErrNotRegular)
	case <-time.After(openBound):
		peer, err := os.OpenFile(fifo, os.O_RDWR, 0)
		require.NoError(t, err)
		peer.Close()
		<-done
		require.FailNow(t, "ReadFile blocked on a FIFO")
	}
}

func TestCauseDropsThePathAndOperation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing")
	_, _, err := Open(path, Options{})
	require.Error(t, err)
	assert.ErrorIs(t, Cause(err), fs.ErrNotExist)
	assert.NotContains(t, Cause(err).Error(), path, "the cause, without the path the message names itself")
	other := errors.New("not a path error")
	assert.Equal(t, other, Cause(other))
}
