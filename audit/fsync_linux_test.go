package audit

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// busySyncFile opens a file under t's temp dir whose Sync always hands its
// fsync to the kernel, as it does while goroutines wait for a P.
func busySyncFile(t *testing.T, f *os.File) *aioFile {
	t.Helper()
	a, ok := newSyncFile(f, func() bool { return true }).(*aioFile)
	require.True(t, ok)
	t.Cleanup(func() { _ = a.Close() })
	if a.ctx == 0 {
		t.Log("this kernel offers no AIO context; Sync falls back to fsync(2)")
	}
	return a
}

func TestKernelFsyncMakesWritesDurable(t *testing.T) {
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "audit.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(t, err)
	a := busySyncFile(t, f)
	for i := range 3 {
		_, err := a.Write([]byte("line\n"))
		require.NoError(t, err)
		require.NoError(t, a.Sync(), "fsync %d", i)
	}
	if a.ctx != 0 {
		assert.Positive(t, a.syncTime, "the fsyncs went through the kernel's AIO")
	}
}

func TestKernelFsyncReportsItsFailure(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	a := busySyncFile(t, w) // a pipe cannot be fsynced
	assert.Error(t, a.Sync(), "a failed fsync is never reported as durable")
}
