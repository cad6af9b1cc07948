// Package nvmltest is a GPU server for tests of NVML code: go-nvml's DGX H100
// mock (eight H100s) answering as a healthy, idle machine, with switches a
// test flips to raise health events, start foreign processes or make memory
// untrustworthy. It is for tests only. It does not import package cuda, so
// that package's own tests can use it too.
package nvmltest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// GPUs is how many GPUs a Machine has.
const GPUs = 8

// NoDevice, as Events.Send's device, sends an event on a GPU NVML cannot name.
const NoDevice = -1

// Timeout bounds every wait of this package for the code under test: it is
// generous, to catch hangs, not to time anything.
const Timeout = 60 * time.Second

// Machine is go-nvml's DGX H100 mock with the calls the mock leaves out
// answered as a healthy, idle machine would: ECC on, no memory pages pending
// retirement, no failed row remap, no running processes, every event type
// supported, and health events only when the test sends them. Its switches
// are safe to use while the code under test runs. Tests may also override
// single functions of Device(t, i); the mock panics on any call nobody
// answers.
type Machine struct {
	// Server is the mock NVML library; give it to gpuhealth.NewNVML.
	Server *server.Server
	// Events is the NVML event set the machine hands out.
	Events *Events
	gpus   []*gpuState
}

// gpuState is what a test switches on one GPU.
type gpuState struct {
	compute, graphics Processes
	retiredPending    atomic.Bool
	rowRemapFailed    atomic.Bool
	supportedEvents   atomic.Uint64
}

// New returns a healthy, idle machine.
func New(t testing.TB) *Machine {
	t.Helper()
	s := dgxh100.New()
	if len(s.Devices) != GPUs {
		t.Fatalf("the dgxh100 mock has %d devices, want %d", len(s.Devices), GPUs)
	}
	m := &Machine{Server: s}
	m.Events = newEvents(t, s)
	for i := range s.Devices {
		g := &gpuState{}
		g.supportedEvents.Store(nvml.EventTypeAll)
		m.gpus = append(m.gpus, g)
		d := m.Device(t, i)
		d.GetEccModeFunc = func() (nvml.EnableState, nvml.EnableState, nvml.Return) {
			return nvml.FEATURE_ENABLED, nvml.FEATURE_ENABLED, nvml.SUCCESS
		}
		d.GetRetiredPagesPendingStatusFunc = func() (nvml.EnableState, nvml.Return) {
			if g.retiredPending.Load() {
				return nvml.FEATURE_ENABLED, nvml.SUCCESS
			}
			return nvml.FEATURE_DISABLED, nvml.SUCCESS
		}
		d.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) {
			return 0, 0, false, g.rowRemapFailed.Load(), nvml.SUCCESS
		}
		d.GetComputeRunningProcessesFunc = g.compute.get
		d.GetGraphicsRunningProcessesFunc = g.graphics.get
		d.GetSupportedEventTypesFunc = func() (uint64, nvml.Return) { return g.supportedEvents.Load(), nvml.SUCCESS }
		d.RegisterEventsFunc = func(mask uint64, set nvml.EventSet) nvml.Return {
			return m.Events.register(t, i, mask, set)
		}
	}
	return m
}

// Device is the mock GPU NVML numbers index.
func (m *Machine) Device(t testing.TB, index int) *server.Device {
	t.Helper()
	d, ok := m.Server.Devices[index].(*server.Device)
	if !ok {
		t.Fatalf("mock device %d has type %T", index, m.Server.Devices[index])
	}
	return d
}

// UUID is the UUID of the mock GPU NVML numbers index.
func (m *Machine) UUID(t testing.TB, index int) string {
	t.Helper()
	return m.Device(t, index).UUID
}

// Compute is the compute processes GPU index reports.
func (m *Machine) Compute(index int) *Processes { return &m.gpus[index].compute }

// Graphics is the graphics processes GPU index reports.
func (m *Machine) Graphics(index int) *Processes { return &m.gpus[index].graphics }

// SetRetiredPagesPending makes GPU index report memory pages pending
// retirement, or none.
func (m *Machine) SetRetiredPagesPending(index int, on bool) { m.gpus[index].retiredPending.Store(on) }

// SetRowRemapFailed makes GPU index report a failed memory row remap, or none.
func (m *Machine) SetRowRemapFailed(index int, on bool) { m.gpus[index].rowRemapFailed.Store(on) }

// SupportEvents makes every GPU report mask as the event types it supports.
func (m *Machine) SupportEvents(mask uint64) {
	for _, g := range m.gpus {
		g.supportedEvents.Store(mask)
	}
}

// ProcessQueries counts how often anyone asked any GPU for its compute
// processes.
func (m *Machine) ProcessQueries(t testing.TB) int {
	t.Helper()
	total := 0
	for i := range m.Server.Devices {
		total += len(m.Device(t, i).GetComputeRunningProcessesCalls())
	}
	return total
}

// Processes is one GPU's running processes of one kind, set by the test
// while the code under test reads them.
type Processes struct {
	mu   sync.Mutex
	pids []uint32
	ret  nvml.Return
}

// Set makes the list report pids, and the query return ret.
func (p *Processes) Set(ret nvml.Return, pids ...uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pids, p.ret = pids, ret
}

// get answers the mock device's query. The zero Processes is an empty list
// that answers SUCCESS.
func (p *Processes) get() ([]nvml.ProcessInfo, nvml.Return) {
	p.mu.Lock()
	defer p.mu.Unlock()
	infos := make([]nvml.ProcessInfo, 0, len(p.pids))
	for _, pid := range p.pids {
		infos = append(infos, nvml.ProcessInfo{Pid: pid, UsedGpuMemory: 1 << 30})
	}
	return infos, p.ret
}

// Events is the machine's NVML event set: its Wait returns what the test
// sends, or ERROR_TIMEOUT once the caller's timeout passes.
type Events struct {
	// Set is the mock event set, for its recorded calls.
	Set     *mock.EventSet
	server  *server.Server
	results chan waitResult

	mu         sync.Mutex
	registered map[int]uint64
}

// waitResult is one answer of Wait.
type waitResult struct {
	data nvml.EventData
	ret  nvml.Return
}

// newEvents installs an event set on s.
func newEvents(t testing.TB, s *server.Server) *Events {
	e := &Events{server: s, results: make(chan waitResult), registered: map[int]uint64{}}
	e.Set = &mock.EventSet{
		WaitFunc: func(timeoutMS uint32) (nvml.EventData, nvml.Return) {
			timer := time.NewTimer(time.Duration(timeoutMS) * time.Millisecond)
			defer timer.Stop()
			select {
			case r := <-e.results:
				return r.data, r.ret
			case <-timer.C:
				return nvml.EventData{}, nvml.ERROR_TIMEOUT
			}
		},
		FreeFunc: func() nvml.Return { return nvml.SUCCESS },
	}
	s.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) { return e.Set, nvml.SUCCESS }
	return e
}

// register records that GPU index registered mask on set.
func (e *Events) register(t testing.TB, index int, mask uint64, set nvml.EventSet) nvml.Return {
	if set != e.Set {
		t.Errorf("device %d registers on an event set the machine did not hand out", index)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.registered[index] = mask
	return nvml.SUCCESS
}

// Registered is the event mask each GPU registered, by NVML index.
func (e *Events) Registered() map[int]uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[int]uint64, len(e.registered))
	for i, mask := range e.registered {
		out[i] = mask
	}
	return out
}

// Send hands the next Wait an event of type kind with data (the XID of a
// critical XID event) on the GPU NVML numbers device, or on a GPU NVML cannot
// name for NoDevice. It returns once a Wait took it, so events sent one
// after another are handled in order.
func (e *Events) Send(t testing.TB, device int, kind, data uint64) {
	t.Helper()
	ev := nvml.EventData{EventType: kind, EventData: data}
	if device != NoDevice {
		ev.Device = e.server.Devices[device]
	}
	e.SendEvent(t, ev)
}

// SendEvent hands the next Wait ev.
func (e *Events) SendEvent(t testing.TB, ev nvml.EventData) {
	t.Helper()
	e.send(t, waitResult{data: ev, ret: nvml.SUCCESS}, "event %#x (%d)", ev.EventType, ev.EventData)
}

// FailWait makes the next Wait fail with ret.
func (e *Events) FailWait(t testing.TB, ret nvml.Return) {
	t.Helper()
	e.send(t, waitResult{ret: ret}, "a failure %v", ret)
}

// send hands r to the next Wait, failing the test if none comes.
func (e *Events) send(t testing.TB, r waitResult, format string, args ...any) {
	t.Helper()
	select {
	case e.results <- r:
	case <-time.After(Timeout):
		t.Fatalf("nobody waited for NVML events within %s to take "+format, append([]any{Timeout}, args...)...)
	}
}
