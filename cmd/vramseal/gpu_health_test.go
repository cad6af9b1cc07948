package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/internal/modeltest"
	"github.com/vramseal/vramseal/messages"
)

func TestRunOnGPUsFailStopsOnFatalXIDsAndLogsTheRest(t *testing.T) {
	tests := []struct {
		name  string
		flags []string
		xid   uint64
		fatal bool
	}{
		{name: "XID 79, fallen off the bus, fail-stops", xid: 79, fatal: true},
		{name: "XID 48, double-bit ECC, fail-stops", xid: 48, fatal: true},
		{name: "XID 13 is the application's: logged only", xid: 13},
		{name: "XID 109 is the application's: logged only", xid: 109},
		{name: "--ignore-xids replaces the list: 13 fail-stops", flags: []string{"--ignore-xids", "79"}, xid: 13, fatal: true},
		{name: "--ignore-xids can excuse 79", flags: []string{"--ignore-xids", "13,79"}, xid: 79},
		{name: "--ignore-xids none: 31 fail-stops", flags: []string{"--ignore-xids", "none"}, xid: 31, fatal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file, _ := modeltest.WriteRandomFile(t, dir, "w.bin", 256<<10)
			// CUDA's device 0 is NVML's 3, as CUDA's fastest-first order may have it.
			m := newMockMachine(t, 4<<20, 3, 6)
			args := append(append(gpuRunFlags(dir, writeToken(t, dir)), tt.flags...), file)
			p := startInProcess(t, m, args...)
			base := p.serving(t)

			m.nvml.Events.Send(t, 3, nvml.EventTypeXidCriticalError, tt.xid)

			if tt.fatal {
				assertFailStopped(t, p, m, dir, fmt.Sprintf("fail-stop: NVML health event: device fault: device 0 (NVML 3, %s): XID %d", m.nvml.Device(t, 3).UUID, tt.xid))
				return
			}
			p.waitForLog(t, "health: application XID, not a device fault", map[string]any{"device": 3, "xid": tt.xid})
			assertRunsOn(t, p, base, dir)
		})
	}
}

func TestRunOnGPUsFailStopsOnlyOnFaultsThatMayBeOnItsGPUs(t *testing.T) {
	tests := []struct {
		name      string
		nvmlIndex int
		kind      uint64
		// cause is the fail-stop's, with %s for the GPU's UUID; empty when
		// the worker runs on.
		cause string
		event string
	}{
		{
			name: "XID 79 on device 1, NVML's 6", nvmlIndex: 6, kind: nvml.EventTypeXidCriticalError,
			cause: "fail-stop: NVML health event: device fault: device 1 (NVML 6, %s): XID 79",
		},
		{
			name: "double-bit ECC on device 0, NVML's 3", nvmlIndex: 3, kind: nvml.EventTypeDoubleBitEccError,
			cause: "fail-stop: NVML health event: device fault: device 0 (NVML 3, %s): double-bit ECC error",
		},
		{
			name: "XID 79 on a GPU NVML cannot name", nvmlIndex: notInNVML, kind: nvml.EventTypeXidCriticalError,
			cause: "fail-stop: NVML health event on a GPU NVML cannot name: device fault: device -1: XID 79",
		},
		{name: "XID 79 on a GPU the worker does not use", nvmlIndex: 5, kind: nvml.EventTypeXidCriticalError, event: "XID 79"},
		{name: "double-bit ECC on a GPU the worker does not use", nvmlIndex: 0, kind: nvml.EventTypeDoubleBitEccError, event: "double-bit ECC error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file, _ := modeltest.WriteRandomFile(t, dir, "w.bin", 256<<10)
			m := newMockMachine(t, 4<<20, 3, 6)
			p := startInProcess(t, m, append(gpuRunFlags(dir, writeToken(t, dir)), file)...)
			base := p.serving(t)

			m.nvml.Events.Send(t, tt.nvmlIndex, tt.kind, 79)

			if tt.cause != "" {
				cause := tt.cause
				if tt.nvmlIndex != notInNVML {
					cause = fmt.Sprintf(tt.cause, m.nvml.Device(t, tt.nvmlIndex).UUID)
				}
				assertFailStopped(t, p, m, dir, cause)
				return
			}
			line := p.waitForLog(t, "hardware fault on a GPU this worker does not use: the worker runs on",
				map[string]any{"nvml_index": tt.nvmlIndex, "uuid": m.nvml.Device(t, tt.nvmlIndex).UUID, "event": tt.event})
			assert.Equal(t, "ERROR", line["level"])
			assertRunsOn(t, p, base, dir)
		})
	}
}

// assertFailStopped checks that the worker p fail-stops on a device fault
// with cause, frees every device and audits the stop as critical.
func assertFailStopped(t *testing.T, p *inProcess, m *mockMachine, dir, cause string) {
	t.Helper()
	p.wait(t)
	assert.Equal(t, exitFailStop, p.code)
	assert.ErrorIs(t, p.err, messages.ErrDeviceFault)
	lines := readAuditLog(t, filepath.Join(dir, "audit.jsonl"))
	assert.EqualError(t, p.err, fmt.Sprintf("%s; VRAM freed, audit log closed (%d records)", cause, len(lines)))
	for i, sim := range m.sims {
		assert.Zero(t, sim.Outstanding(), "device %d freed", i)
	}
	require.NotEmpty(t, lines)
	last := lines[len(lines)-1]
	assert.Equal(t, audit.EventWorkerStopped, last.Event)
	assert.Equal(t, audit.SeverityCritical, last.Severity)
	assert.Equal(t, strings.TrimPrefix(cause, "fail-stop: "), last.Fields["cause"], "the audited cause")
}

// assertRunsOn checks that the worker p, served at base, is still ready,
// then stops it and checks that it stopped gracefully.
func assertRunsOn(t *testing.T, p *inProcess, base, dir string) {
	t.Helper()
	eventually(t, func() (bool, string) {
		code, body := httpGet(t, base+"/readyz")
		return code == http.StatusOK, fmt.Sprintf("/readyz %d: %s", code, body)
	})
	p.stop(t)
	assert.Equal(t, exitOK, p.code, "%v", p.err)
	assert.NoError(t, p.err)
	lines := readAuditLog(t, filepath.Join(dir, "audit.jsonl"))
	require.NotEmpty(t, lines)
	assert.Equal(t, true, lines[len(lines)-1].Fields["graceful"], "the worker ran on and stopped gracefully")
}

func TestRunOnGPUsIsNotReadyWhileNVMLDistrustsTheirMemory(t *testing.T) {
	tests := []struct {
		name   string
		fault  func(m *mockMachine, nvmlIndex int, on bool)
		reason string
	}{
		{
			name:   "pages pending retirement",
			fault:  func(m *mockMachine, i int, on bool) { m.nvml.SetRetiredPagesPending(i, on) },
			reason: "not ready: device 1 is not fit for sealed weights: NVML device 6: memory pages are pending retirement; reset the GPU",
		},
		{
			name:   "failed row remap",
			fault:  func(m *mockMachine, i int, on bool) { m.nvml.SetRowRemapFailed(i, on) },
			reason: "not ready: device 1 is not fit for sealed weights: NVML device 6: a memory row remap failed; the GPU needs service",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file, _ := modeltest.WriteRandomFile(t, dir, "w.bin", 256<<10)
			m := newMockMachine(t, 4<<20, 3, 6)
			p := startInProcess(t, m, append(gpuRunFlags(dir, writeToken(t, dir)), file)...)
			base := p.serving(t)
			readyz := func(want int) {
				eventually(t, func() (bool, string) {
					code, body := httpGet(t, base+"/readyz")
					return code == want, fmt.Sprintf("/readyz %d: %s", code, body)
				})
			}
			readyz(http.StatusOK)

			tt.fault(m, 6, true)
			code, body := httpGet(t, base+"/readyz")
			assert.Equal(t, http.StatusServiceUnavailable, code)
			assert.Equal(t, tt.reason+"\n", body)
			code, _ = httpGet(t, base+"/healthz")
			assert.Equal(t, http.StatusOK, code, "the worker still runs")

			tt.fault(m, 6, false)
			readyz(http.StatusOK)
			p.stop(t)
			assert.Equal(t, exitOK, p.code, "%v", p.err)
		})
	}
}

func TestRunOnGPUsRunsUnwatchedWithoutNVML(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(m *mockMachine)
		nvml    []int
		wantLog string
		attrs   map[string]any
	}{
		{
			name: "no NVML library",
			setup: func(m *mockMachine) {
				m.nvmlErr = fmt.Errorf("%w: libnvidia-ml.so.1 could not be loaded", cuda.ErrNoDriver)
			},
			nvml:    []int{0, 1},
			wantLog: "NVML unavailable: GPU health and contention monitoring are off",
		},
		{
			name:    "a GPU NVML does not know",
			setup:   func(*mockMachine) {},
			nvml:    []int{0, notInNVML},
			wantLog: "GPU unknown to NVML: its health and contention are not watched",
			attrs:   map[string]any{"device": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file, _ := modeltest.WriteRandomFile(t, dir, "w.bin", 256<<10)
			m := newMockMachine(t, 4<<20, tt.nvml...)
			tt.setup(m)

			p := runInProcess(t, m, append(gpuRunFlags(dir, writeToken(t, dir)), "--duration", "1ms", file)...)

			require.Equal(t, exitOK, p.code, "%v; stderr:\n%s", p.err, p.stderr.String())
			line := p.findLog(tt.wantLog, tt.attrs)
			require.NotNil(t, line, "stderr:\n%s", p.stderr.String())
			assert.Equal(t, "WARN", line["level"])
		})
	}
}
