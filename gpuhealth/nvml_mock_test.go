package gpuhealth

import (
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"github.com/stretchr/testify/require"
)

// openMockNVML initialises NVML over s, a mock such as nvmltest.New's, and
// closes it when the test ends.
func openMockNVML(t *testing.T, s *server.Server) *NVML {
	t.Helper()
	n, err := NewNVML(s)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	return n
}
