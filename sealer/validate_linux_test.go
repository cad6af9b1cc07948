//go:build linux

package sealer

import (
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/messages"
)

// TestValidateShardIDHugeIsRejectedWithoutScanning hands ValidateShardID a
// 1 GiB ID of which only the first page can be read: the rest is mapped with
// no access, so any scan past the short quoted prefix would crash the test.
func TestValidateShardIDHugeIsRejectedWithoutScanning(t *testing.T) {
	const size, page = 1 << 30, 1 << 16
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_NONE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, syscall.Munmap(mem)) })
	require.NoError(t, syscall.Mprotect(mem[:page], syscall.PROT_READ|syscall.PROT_WRITE))
	for i := range page {
		mem[i] = 'a' // every readable byte is allowed, so only the length can fail it
	}

	id := unsafe.String(&mem[0], size)
	err = ValidateShardID(id)
	require.ErrorIs(t, err, messages.ErrInvalidInput)
	assert.Contains(t, err.Error(), "1073741824 bytes")
	assert.Less(t, len(err.Error()), 400)
}
