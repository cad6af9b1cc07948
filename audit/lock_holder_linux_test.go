package audit

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestASecondWriterIsToldWhichProcessHoldsTheLog(t *testing.T) {
	key := testKey(t, "w1")
	path := filepath.Join(t.TempDir(), "audit.log")
	first, err := Open(path, LogConfig{Key: key})
	require.NoError(t, err)
	defer first.Close()

	_, err = Open(path, LogConfig{Key: key})
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("in use: another process (PID %d (", os.Getpid()))
}

func TestFlockHolderReadsProcLocks(t *testing.T) {
	locks := `1: POSIX  ADVISORY  WRITE 111 fe:00:42 0 EOF
2: FLOCK  ADVISORY  WRITE 222 fe:00:43 0 EOF
2: -> FLOCK  ADVISORY  WRITE 333 fe:00:42 0 EOF
3: FLOCK  ADVISORY  WRITE 444 08:01:42 0 EOF
`
	assert.Equal(t, 444, flockHolder(bufio.NewScanner(strings.NewReader(locks)), 42), "the FLOCK on the inode, not a POSIX lock or a waiter")
	assert.Zero(t, flockHolder(bufio.NewScanner(strings.NewReader(locks)), 7))
}
