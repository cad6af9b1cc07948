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
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/cuda"
)

// notInNVML, in newMockMachine's list, is a GPU whose UUID NVML does not know.
const notInNVML = -1

// mockMachine is a GPU server for in-process tests of the real-GPU paths.
// go-nvml's DGX H100 mock (eight H100s) answers NVML, and small simulated
// devices stand in for the GPUs the CUDA driver shows. Each simulated device
// reports the UUID of the mock GPU it stands for, so the worker matches it to
// NVML's index by UUID exactly as it matches a real GPU.
//
// The mock answers as a healthy, idle machine: ECC on, no pages pending
// retirement, no failed row remap, no processes, and health events only when
// a test sends them. Tests change that through the fields below, which are
// safe to use while the worker runs.
type mockMachine struct {
	server *server.Server
	// sims are the CUDA driver's GPUs, by CUDA ordinal; sim i stands for
	// mock GPU nvmlIndex[i].
	sims      []*cuda.Sim
	nvmlIndex []int
	// integrated makes every GPU report itself integrated (system RAM).
	integrated bool
	// nvmlErr, when set, is what opening NVML fails with.
	nvmlErr error

	events         *mockEvents
	processes      []*processList // by NVML index
	retiredPending []*atomic.Bool // by NVML index
	rowRemapFailed []*atomic.Bool // by NVML index
}

// newMockMachine returns a machine whose CUDA driver shows one simulated GPU
// of simVRAM bytes per entry of nvmlIndex, standing for that mock GPU (or for
// none, with notInNVML), in that order.
func newMockMachine(t *testing.T, simVRAM int64, nvmlIndex ...int) *mockMachine {
	t.Helper()
	s := dgxh100.New()
	require.Len(t, s.Devices, 8, "dgxh100 mock devices")
	m := &mockMachine{server: s, nvmlIndex: nvmlIndex, events: newMockEvents(s)}
	for i := range s.Devices {
		pending, remapFailed, procs := &atomic.Bool{}, &atomic.Bool{}, &processList{}
		m.retiredPending = append(m.retiredPending, pending)
		m.rowRemapFailed = append(m.rowRemapFailed, remapFailed)
		m.processes = append(m.processes, procs)
		d := m.device(t, i)
		d.GetEccModeFunc = func() (nvml.EnableState, nvml.EnableState, nvml.Return) {
			return nvml.FEATURE_ENABLED, nvml.FEATURE_ENABLED, nvml.SUCCESS
		}
		d.GetRetiredPagesPendingStatusFunc = func() (nvml.EnableState, nvml.Return) {
			if pending.Load() {
				return nvml.FEATURE_ENABLED, nvml.SUCCESS
			}
			return nvml.FEATURE_DISABLED, nvml.SUCCESS
		}
		d.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) {
			return 0, 0, false, remapFailed.Load(), nvml.SUCCESS
		}
		d.GetComputeRunningProcessesFunc = procs.get
		d.GetGraphicsRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.SUCCESS }
		d.GetSupportedEventTypesFunc = func() (uint64, nvml.Return) { return nvml.EventTypeAll, nvml.SUCCESS }
		d.RegisterEventsFunc = func(uint64, nvml.EventSet) nvml.Return { return nvml.SUCCESS }
	}
	for i := range nvmlIndex {
		sim, err := cuda.NewSim(cuda.SimConfig{Name: fmt.Sprintf("stand-in %d", i), Capacity: simVRAM, Seed: int64(i + 1)})
		require.NoError(t, err)
		m.sims = append(m.sims, sim)
	}
	return m
}

// device is the mock GPU NVML numbers index.
func (m *mockMachine) device(t *testing.T, index int) *server.Device {
	t.Helper()
	d, ok := m.server.Devices[index].(*server.Device)
	require.True(t, ok, "mock device %d has type %T", index, m.server.Devices[index])
	return d
}

// source is the machine as the worker reaches it.
func (m *mockMachine) source() gpuSource {
	return gpuSource{
		deviceCount: func() (int, error) { return len(m.sims), nil },
		openDevice: func(ordinal int) (cuda.Device, error) {
			g := mockGPU{Sim: m.sims[ordinal], uuid: fmt.Sprintf("GPU-00000000-0000-0000-0000-%012d", ordinal), integrated: m.integrated}
			if i := m.nvmlIndex[ordinal]; i != notInNVML {
				d := m.server.Devices[i].(*server.Device)
				g.uuid, g.name = d.UUID, d.Config.Name
			}
			return g, nil
		},
		openNVML: func() (*cuda.NVML, error) {
			if m.nvmlErr != nil {
				return nil, m.nvmlErr
			}
			return cuda.NewNVML(m.server)
		},
	}
}

// processQueries counts how often anyone asked any mock GPU for its compute
// processes.
func (m *mockMachine) processQueries(t *testing.T) int {
	t.Helper()
	total := 0
	for i := range m.server.Devices {
		total += len(m.device(t, i).GetComputeRunningProcessesCalls())
	}
	return total
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

// mockEvents is the mock's NVML event set: Wait returns what the test sends,
// or ERROR_TIMEOUT once the watcher's timeout passes.
type mockEvents struct {
	server  *server.Server
	results chan nvml.EventData
}

// newMockEvents installs an event set on s.
func newMockEvents(s *server.Server) *mockEvents {
	m := &mockEvents{server: s, results: make(chan nvml.EventData)}
	set := &mock.EventSet{
		WaitFunc: func(timeoutMS uint32) (nvml.EventData, nvml.Return) {
			timer := time.NewTimer(time.Duration(timeoutMS) * time.Millisecond)
			defer timer.Stop()
			select {
			case ev := <-m.results:
				return ev, nvml.SUCCESS
			case <-timer.C:
				return nvml.EventData{}, nvml.ERROR_TIMEOUT
			}
		},
		FreeFunc: func() nvml.Return { return nvml.SUCCESS },
	}
	s.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) { return set, nvml.SUCCESS }
	return m
}

// send hands the health watcher an event of type kind with data (the XID of
// a critical XID event) on the GPU NVML numbers index, or on a GPU NVML
// cannot name for notInNVML, once it waits for events. Events are handled in
// order: the next send returns only after this one was handled.
func (m *mockEvents) send(t *testing.T, index int, kind, data uint64) {
	t.Helper()
	ev := nvml.EventData{EventType: kind, EventData: data}
	if index != notInNVML {
		ev.Device = m.server.Devices[index]
	}
	select {
	case m.results <- ev:
	case <-time.After(processTimeout):
		require.FailNow(t, "the health watcher never waited for events", "event %#x (%d) on NVML device %d", kind, data, index)
	}
}

// processList is one mock GPU's compute processes, set by the test while
// the worker reads them.
type processList struct {
	mu   sync.Mutex
	pids []uint32
}

func (l *processList) set(pids ...uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pids = pids
}

func (l *processList) get() ([]nvml.ProcessInfo, nvml.Return) {
	l.mu.Lock()
	defer l.mu.Unlock()
	infos := make([]nvml.ProcessInfo, 0, len(l.pids))
	for _, pid := range l.pids {
		infos = append(infos, nvml.ProcessInfo{Pid: pid, UsedGpuMemory: 1 << 30})
	}
	return infos, nvml.SUCCESS
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
