package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/internal/modeltest"
)

func TestRunOnGPUsActsOnOtherProcessesAsTheContentionPolicySays(t *testing.T) {
	const foreignPID, strangerPID = 4242, 777
	tests := []struct {
		policy string
		// check runs once the worker serves and the mock shows foreignPID on
		// NVML's GPU 2 (the worker's device 1); the worker stops after it.
		check func(t *testing.T, m *mockMachine, p *inProcess, base string)
		// policyViolations is how many PolicyViolation records the audit log
		// ends with.
		policyViolations int
	}{
		{
			policy: "evict",
			check: func(t *testing.T, m *mockMachine, p *inProcess, base string) {
				eventually(t, func() (bool, string) {
					return m.sims[1].Outstanding() == 0, fmt.Sprintf("device 1 holds %d allocations", m.sims[1].Outstanding())
				})
				code, body := httpGet(t, base+"/readyz")
				assert.Equal(t, http.StatusServiceUnavailable, code)
				assert.Equal(t, fmt.Sprintf("not ready: device 1 evicted: foreign processes [%d]\n", foreignPID), body)
				code, _ = httpGet(t, base+"/healthz")
				assert.Equal(t, http.StatusOK, code, "the worker runs on")
				assert.Equal(t, 1, m.sims[0].Outstanding(), "device 0 keeps its shard")
				p.waitForLog(t, "evicted every shard on the device", map[string]any{"device": 1, "freed_shards": 1})
			},
			policyViolations: 1,
		},
		{
			policy: "warn",
			check: func(t *testing.T, m *mockMachine, p *inProcess, base string) {
				p.waitForLog(t, "other processes use a GPU that holds sealed shards", map[string]any{"device": 1, "nvml_index": 2, "pids": []uint32{foreignPID}})
				eventually(t, func() (bool, string) {
					code, body := httpGet(t, base+"/readyz")
					return code == http.StatusOK, fmt.Sprintf("/readyz %d: %s", code, body)
				})
				for i, sim := range m.sims {
					assert.Equal(t, 1, sim.Outstanding(), "device %d keeps its shard", i)
				}
			},
		},
		{
			policy: "ignore",
			check: func(t *testing.T, m *mockMachine, p *inProcess, base string) {
				eventually(t, func() (bool, string) {
					code, body := httpGet(t, base+"/readyz")
					return code == http.StatusOK, fmt.Sprintf("/readyz %d: %s", code, body)
				})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			dir := t.TempDir()
			a, _ := modeltest.WriteRandomFile(t, dir, "a.bin", 1<<20)
			b, _ := modeltest.WriteRandomFile(t, dir, "b.bin", 1<<20)
			// CUDA's devices 0 and 1 are NVML's 5 and 2; a.bin goes to device
			// 0, b.bin to device 1.
			m := newMockMachine(t, 4<<20, 5, 2)
			m.nvml.Compute(2).Set(nvml.SUCCESS, uint32(os.Getpid()), foreignPID)
			m.nvml.Compute(7).Set(nvml.SUCCESS, strangerPID) // a GPU the worker does not use
			args := append(gpuRunFlags(dir, writeToken(t, dir)), "--on-contention", tt.policy, a, b)
			p := startInProcess(t, m, args...)
			base := p.serving(t)

			tt.check(t, m, p, base)

			p.stop(t)
			require.Equal(t, exitOK, p.code, "%v; stderr:\n%s", p.err, p.stderr.String())
			assert.Nil(t, p.findLog("other processes use a GPU that holds sealed shards", map[string]any{"nvml_index": 7}),
				"processes on a GPU the worker does not use are not its concern")
			if tt.policy == "ignore" {
				assert.Zero(t, m.nvml.ProcessQueries(t), "nobody looked for processes")
			} else {
				assert.NotZero(t, m.nvml.ProcessQueries(t))
			}

			lines := readAuditLog(t, filepath.Join(dir, "audit.jsonl"))
			var violations []auditLine
			for _, l := range lines {
				if l.Event == audit.EventPolicyViolation {
					violations = append(violations, l)
				}
			}
			require.Len(t, violations, tt.policyViolations)
			if tt.policyViolations == 0 {
				assert.Equal(t, map[string]int{"a.bin": 1, "b.bin": 1}, countEvents(lines, audit.EventVramDeallocated))
				return
			}
			v := violations[0]
			assert.Equal(t, audit.SeverityWarning, v.Severity)
			assert.EqualValues(t, 1, v.Fields["device"])
			assert.Equal(t, "evict", v.Fields["action"])
			assert.Equal(t, fmt.Sprintf("foreign processes [%d]", foreignPID), v.Fields["reason"])
			for _, l := range lines {
				if l.Event == audit.EventVramDeallocated && l.Fields["shard_id"] == "b.bin" {
					assert.Equal(t, "evict", l.Fields["source"], "b.bin was freed by the eviction")
				}
			}
			assert.Equal(t, map[string]int{"a.bin": 1, "b.bin": 1}, countEvents(lines, audit.EventVramDeallocated), "each shard freed once")
		})
	}
}
