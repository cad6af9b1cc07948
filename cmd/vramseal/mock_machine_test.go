package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/gpuhealth"
	"github.com/vramseal/vramseal/internal/nvmltest"
)

// notInNVML, in newMockMachine's list, is a GPU whose UUID NVML does not know.
const notInNVML = nvmltest.NoDevice

// mockMachine is a GPU server for in-process tests of the real-GPU paths.
// nvmltest's DGX H100 (eight H100s) answers NVML, and small simulated devices
// stand in for the GPUs the CUDA driver shows. Each simulated device reports
// the UUID of the mock GPU it stands for, so the worker matches it to NVML's
// index by UUID exactly as it matches a real GPU. Tests raise events and
// faults through nvml.
type mockMachine struct {
	nvml *nvmltest.Machine
	// sims are the CUDA driver's GPUs, by CUDA ordinal; sim i stands for
	// mock GPU nvmlIndex[i].
	sims      []*cuda.Sim
	nvmlIndex []int
	// integrated makes every GPU report itself integrated (system RAM).
	integrated bool
	// nvmlErr, when set, is what opening NVML fails with.
	nvmlErr error
}

// newMockMachine returns a machine whose CUDA driver shows one simulated GPU
// of simVRAM bytes per entry of nvmlIndex, standing for that mock GPU (or for
// none, with notInNVML), in that order.
func newMockMachine(t *testing.T, simVRAM int64, nvmlIndex ...int) *mockMachine {
	t.Helper()
	m := &mockMachine{nvml: nvmltest.New(t), nvmlIndex: nvmlIndex}
	for i := range nvmlIndex {
		sim, err := cuda.NewSim(cuda.SimConfig{Name: fmt.Sprintf("stand-in %d", i), Capacity: simVRAM, Seed: int64(i + 1)})
		require.NoError(t, err)
		m.sims = append(m.sims, sim)
	}
	return m
}

// source is the machine as the worker reaches it.
func (m *mockMachine) source() gpuhealth.Source {
	return gpuhealth.Source{
		DeviceCount: func() (int, error) { return len(m.sims), nil },
		OpenDevice: func(ordinal int) (cuda.Device, error) {
			g := mockGPU{Sim: m.sims[ordinal], uuid: fmt.Sprintf("GPU-00000000-0000-0000-0000-%012d", ordinal), integrated: m.integrated}
			if i := m.nvmlIndex[ordinal]; i != notInNVML {
				d := m.nvml.Server.Devices[i].(*server.Device)
				g.uuid, g.name = d.UUID, d.Config.Name
			}
			return g, nil
		},
		OpenNVML: func() (*gpuhealth.NVML, error) {
			if m.nvmlErr != nil {
				return nil, m.nvmlErr
			}
			return gpuhealth.NewNVML(m.nvml.Server)
		},
	}
}

// mockGPU is a simulated device that reports itself as a mock NVML GPU: its
// UUID and name, so that the worker matches it to NVML as a real GPU.
type mockGPU struct {
	*cuda.Sim
	uuid, name string
	integrated bool
}

// Properties are the simulated device's, with the mock GPU's identity.
func (g mockGPU) Properties() cuda.Properties {
	p := g.Sim.Properties()
	p.UUID, p.Integrated = g.uuid, g.integrated
	if g.name != "" {
		p.Name = g.name
	}
	return p
}

// gpuRunFlags run a small, quick worker on the mock machine's GPUs: 64 KiB
// chunks, a scrub every 200 ms, a look for other processes every 20 ms,
// endpoints on a free port and JSON logs.
func gpuRunFlags(dir, token string) []string {
	return []string{
		"run", "--backend", "cuda", "--chunk-size", "64KiB", "--verify-interval", "200ms",
		"--contention-interval", "20ms", "--listen", "127.0.0.1:0",
		"--token-file", token, "--audit-log", filepath.Join(dir, "audit.jsonl"),
		"--log-format", "json", "--worker-id", "gpu-worker",
	}
}

// inProcess is one vramseal command line running in this test's process on
// a mockMachine. Cleanup cancels it and waits for it if the test has not.
type inProcess struct {
	cancel context.CancelFunc
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{}
	// Set before done closes.
	err  error
	code int
}

// startInProcess runs args on m's GPUs until they end or stop is called.
func startInProcess(t *testing.T, m *mockMachine, args ...string) *inProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcess{cancel: cancel, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	a := &app{stdout: p.stdout, stderr: p.stderr, gpus: m.source()}
	go func() {
		defer close(p.done)
		p.err = a.execute(ctx, args)
		p.code = exitCodeOf(p.err, a.started)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

// runInProcess runs args on m's GPUs to the end.
func runInProcess(t *testing.T, m *mockMachine, args ...string) *inProcess {
	t.Helper()
	p := startInProcess(t, m, args...)
	p.wait(t)
	return p
}

// stop stops the command as SIGTERM would, and waits for it.
func (p *inProcess) stop(t *testing.T) {
	t.Helper()
	p.cancel()
	p.wait(t)
}

// wait waits for the command to end.
func (p *inProcess) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(processTimeout):
		require.FailNow(t, "vramseal did not end", "within %s; stderr:\n%s", processTimeout, p.stderr.String())
	}
}

// ended reports whether the command has ended.
func (p *inProcess) ended() bool { return isClosed(p.done) }

// logLines parses the JSON log lines written so far.
func (p *inProcess) logLines() []map[string]any {
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil {
			lines = append(lines, line)
		}
	}
	return lines
}

// findLog returns the first log line with message msg whose attributes
// include want (numbers as JSON decodes them, float64), or nil.
func (p *inProcess) findLog(msg string, want map[string]any) map[string]any {
	for _, line := range p.logLines() {
		if line["msg"] != msg {
			continue
		}
		match := true
		for k, v := range want {
			if fmt.Sprint(line[k]) != fmt.Sprint(v) {
				match = false
			}
		}
		if match {
			return line
		}
	}
	return nil
}

// waitForLog waits for a log line findLog would return.
func (p *inProcess) waitForLog(t *testing.T, msg string, want map[string]any) map[string]any {
	t.Helper()
	var found map[string]any
	eventually(t, func() (bool, string) {
		if found = p.findLog(msg, want); found != nil {
			return true, ""
		}
		if p.ended() {
			require.FailNow(t, "vramseal ended early", "waiting for log %q %v: %v; stderr:\n%s", msg, want, p.err, p.stderr.String())
		}
		return false, fmt.Sprintf("no log %q %v in:\n%s", msg, want, p.stderr.String())
	})
	return found
}

// serving waits until every shard is sealed and verified and returns the
// endpoints' base URL.
func (p *inProcess) serving(t *testing.T) string {
	t.Helper()
	base := "http://" + p.waitForLog(t, "serving", nil)["addr"].(string)
	p.waitForLog(t, "every shard sealed and verified", nil)
	return base
}

// syncBuffer is an output safe to write from the command's goroutines while
// the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
