package gpuhealth

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/vramseal/vramseal/messages"
)

// ContentionPolicy says what to do when another process uses a GPU that
// holds sealed weights.
type ContentionPolicy int

const (
	// ContentionIgnore does nothing.
	ContentionIgnore ContentionPolicy = iota + 1
	// ContentionWarn logs the foreign processes and carries on.
	ContentionWarn
	// ContentionEvict releases the device's shards and marks it not ready.
	ContentionEvict
)

// contentionPolicyNames are the policies' names, as flags and configs spell them.
var contentionPolicyNames = map[ContentionPolicy]string{
	ContentionIgnore: "ignore",
	ContentionWarn:   "warn",
	ContentionEvict:  "evict",
}

// parseContentionPolicy reads "ignore", "warn" or "evict". Anything else
// fails with messages.ErrConfig.
func parseContentionPolicy(s string) (ContentionPolicy, error) {
	for p, name := range contentionPolicyNames {
		if s == name {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w: contention policy %q: want ignore, warn or evict", messages.ErrConfig, s)
}

// String returns the policy's name.
func (p ContentionPolicy) String() string {
	if name, ok := contentionPolicyNames[p]; ok {
		return name
	}
	return fmt.Sprintf("ContentionPolicy(%d)", int(p))
}

// Set parses s into p, so a ContentionPolicy can be a command-line flag.
func (p *ContentionPolicy) Set(s string) error {
	parsed, err := parseContentionPolicy(s)
	if err != nil {
		return err
	}
	*p = parsed
	return nil
}

// Type names the flag's value type in help text.
func (p *ContentionPolicy) Type() string { return "ignore|warn|evict" }

// DefaultContentionInterval is how often a ContentionMonitor looks for other
// processes when ContentionConfig.Interval is zero.
const DefaultContentionInterval = 5 * time.Second

// contentionConfig configures a ContentionMonitor.
type contentionConfig struct {
	// OnContention is called, from the monitor's goroutine, when the set of
	// other processes on a device changes and is not empty. device is the
	// NVML index (see NVML.IndexByUUID); pids is sorted and belongs to the
	// callee. It must not block for long, nor call Stop. Required.
	OnContention func(device int, pids []uint32)
	// Interval is the time between looks. Zero means
	// DefaultContentionInterval; otherwise it must be positive.
	Interval time.Duration
	// OwnPID is this process as NVML sees it; zero means os.Getpid(). In a
	// container NVML reports host PIDs, so set it there.
	OwnPID uint32
	// Logger receives failed queries. Nil means slog.Default().
	Logger *slog.Logger
}

// contentionMonitor watches for other processes on the GPUs: a shared GPU
// lets another tenant observe or disturb device memory. It owns one
// goroutine, from Start until Stop, that asks NVML every Interval. Use it
// once: Start, then Stop.
type contentionMonitor struct {
	nvml         *NVML
	onContention func(int, []uint32)
	interval     time.Duration
	self         uint32
	log          *slog.Logger
	worker       nvmlWorker

	// Owned by the monitor's goroutine.
	last     map[int][]uint32
	failures map[int]string
}

// newContentionMonitor returns a monitor over every device n sees. It fails
// with messages.ErrConfig if OnContention is missing or Interval negative.
func newContentionMonitor(n *NVML, cfg contentionConfig) (*contentionMonitor, error) {
	if cfg.OnContention == nil {
		return nil, fmt.Errorf("%w: contention monitor needs an OnContention callback", messages.ErrConfig)
	}
	interval := cfg.Interval
	if interval == 0 {
		interval = DefaultContentionInterval
	}
	if interval < 0 {
		return nil, fmt.Errorf("%w: contention interval %v is negative", messages.ErrConfig, cfg.Interval)
	}
	self := cfg.OwnPID
	if self == 0 {
		self = uint32(os.Getpid())
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &contentionMonitor{
		nvml:         n,
		onContention: cfg.OnContention,
		interval:     interval,
		self:         self,
		log:          log,
		worker:       newNVMLWorker("contention monitor"),
		last:         make(map[int][]uint32),
		failures:     make(map[int]string),
	}, nil
}

// Start starts the monitor's goroutine, which looks at once and then every
// Interval until ctx is cancelled or Stop is called. Starting twice fails
// with messages.ErrInvalidInput, after Stop with messages.ErrStopped.
func (m *contentionMonitor) Start(ctx context.Context) error {
	return m.worker.start(ctx, func() (func(context.Context), error) { return m.run, nil })
}

// Stop ends the monitor's goroutine and waits for it. It is safe to call more
// than once and before Start, but not from OnContention.
func (m *contentionMonitor) Stop() { m.worker.stop() }

// Done is closed when the monitor's goroutine has ended, or at Stop if it
// never started.
func (m *contentionMonitor) Done() <-chan struct{} { return m.worker.doneChan() }

// run polls until ctx ends.
func (m *contentionMonitor) run(ctx context.Context) {
	ticker := time.NewTicker(m.interval)
	defer ticker.Stop()
	for {
		m.poll()
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// poll looks at every device once and reports those whose foreign processes
// changed to a non-empty set. A failed query is logged when its message
// changes and leaves the device's last known set as it was.
func (m *contentionMonitor) poll() {
	count, err := m.nvml.DeviceCount()
	if err != nil {
		m.logFailure(-1, err)
		return
	}
	delete(m.failures, -1)
	for i := range count {
		pids, err := m.nvml.ForeignProcesses(i, m.self)
		if err != nil {
			m.logFailure(i, err)
			continue
		}
		delete(m.failures, i)
		if slices.Equal(pids, m.last[i]) {
			continue
		}
		m.last[i] = pids
		if len(pids) > 0 {
			m.onContention(i, slices.Clone(pids))
		}
	}
}

// logFailure logs err for device (-1 for the device count) unless it is the
// one logged last time.
func (m *contentionMonitor) logFailure(device int, err error) {
	if m.failures[device] == err.Error() {
		return
	}
	m.failures[device] = err.Error()
	m.log.Warn("contention: cannot list processes", "device", device, "error", err)
}

// ForeignProcesses lists, sorted and without repeats, the processes other
// than self that run compute or graphics work on the device at index.
func (n *NVML) ForeignProcesses(index int, self uint32) ([]uint32, error) {
	dev, err := n.handle(index)
	if err != nil {
		return nil, err
	}
	compute, ret := dev.GetComputeRunningProcesses()
	if ret != nvml.SUCCESS && ret != nvml.ERROR_NOT_SUPPORTED {
		return nil, deviceError(index, "compute processes", ret)
	}
	graphics, ret := dev.GetGraphicsRunningProcesses()
	if ret != nvml.SUCCESS && ret != nvml.ERROR_NOT_SUPPORTED {
		return nil, deviceError(index, "graphics processes", ret)
	}
	var pids []uint32
	for _, p := range slices.Concat(compute, graphics) {
		if p.Pid != self {
			pids = append(pids, p.Pid)
		}
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}
