package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/units"
)

func TestDevicesListsTheGPUsNVMLSees(t *testing.T) {
	for _, backend := range []string{"auto", "cuda"} {
		t.Run(backend+" json", func(t *testing.T) {
			m := newMockMachine(t, 1<<20, 0)

			p := runInProcess(t, m, "devices", "--backend", backend, "--json")

			require.Equal(t, exitOK, p.code, "%v; stderr:\n%s", p.err, p.stderr.String())
			var list []deviceJSON
			require.NoError(t, json.Unmarshal([]byte(p.stdout.String()), &list))
			require.Len(t, list, 8, "every GPU of the DGX H100, not only those CUDA shows")
			uuids := map[string]bool{}
			for i, d := range list {
				mockGPU := m.nvml.Device(t, i)
				assert.Equal(t, i, d.Index)
				assert.Equal(t, "NVIDIA H100 80GB HBM3", d.Name)
				assert.Equal(t, mockGPU.UUID, d.UUID)
				assert.Regexp(t, `^GPU-[0-9a-f-]{36}$`, d.UUID)
				assert.EqualValues(t, mockGPU.MemoryInfo.Total, d.TotalMemoryBytes)
				assert.Greater(t, d.TotalMemoryBytes, int64(79<<30), "an 80 GB H100")
				assert.Equal(t, "9.0", d.ComputeCapability)
				assert.False(t, d.Simulated)
				uuids[d.UUID] = true
			}
			assert.Len(t, uuids, 8, "each GPU has its own UUID")
		})
	}
	t.Run("table", func(t *testing.T) {
		m := newMockMachine(t, 1<<20, 0)

		p := runInProcess(t, m, "devices", "--backend", "cuda")

		require.Equal(t, exitOK, p.code, "%v; stderr:\n%s", p.err, p.stderr.String())
		lines := strings.Split(strings.TrimSpace(p.stdout.String()), "\n")
		require.Len(t, lines, 9)
		assert.Regexp(t, `^INDEX\s+NAME\s+UUID\s+TOTAL\s+FREE\s+COMPUTE$`, lines[0])
		for i, line := range lines[1:] {
			total := units.Bytes(int64(m.nvml.Device(t, i).MemoryInfo.Total))
			assert.Regexp(t, `^`+string(rune('0'+i))+`\s+NVIDIA H100 80GB HBM3\s+`+m.nvml.Device(t, i).UUID+`\s+`+total+`\s+`, line)
		}
	})
}
