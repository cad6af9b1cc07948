package gpuhealth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/vramseal/vramseal/messages"
)

// defaultHealthWaitTimeout is how long one wait for NVML health events lasts
// when HealthConfig.WaitTimeout is zero. It bounds how long Stop takes.
const defaultHealthWaitTimeout = 250 * time.Millisecond

// maxHealthWaitTimeout is the longest HealthConfig.WaitTimeout accepted, so
// that Stop stays prompt.
const maxHealthWaitTimeout = 10 * time.Second

// healthEvents are the NVML events the watcher asks for: critical XIDs and
// double-bit ECC errors are faults; single-bit ECC errors are corrected by
// the hardware and only logged.
const healthEvents = nvml.EventTypeXidCriticalError | nvml.EventTypeDoubleBitEccError | nvml.EventTypeSingleBitEccError

// DefaultIgnoredXIDs returns the XIDs that an application causes, not the
// GPU, so they are logged rather than treated as device faults:
//
//	13  graphics engine exception (for example an out-of-range access in a kernel)
//	31  GPU memory page fault (an illegal address in an application)
//	43  GPU stopped processing (an application was stopped after a fault)
//	45  preemptive cleanup after an earlier error
//	68  video processor exception
//	109 context switch timeout
func DefaultIgnoredXIDs() []uint64 {
	return []uint64{13, 31, 43, 45, 68, 109}
}

// HealthConfig configures the health watch (Watch.StartHealth).
type HealthConfig struct {
	// OnFault receives, from the watcher's goroutine, one error per critical
	// XID or double-bit ECC error. Each wraps messages.ErrDeviceFault and a
	// *DeviceFaultError (get it with errors.As), which says which GPU, by NVML
	// index and UUID, and what happened, such as "device fault: device 3:
	// XID 79". It must not block for long, nor call Stop. Required.
	OnFault func(err error)
	// IgnoredXIDs are XIDs that are logged, not reported as faults. Nil means
	// DefaultIgnoredXIDs(); an empty, non-nil slice ignores none.
	IgnoredXIDs []uint64
	// WaitTimeout bounds each wait for an event, and so how long Stop takes.
	// Zero means 250 ms; otherwise it must lie between a
	// millisecond and 10 s.
	WaitTimeout time.Duration
	// Logger receives ignored XIDs, single-bit ECC errors and failed waits.
	// Nil means slog.Default().
	Logger *slog.Logger
}

// healthWatcher reports GPU hardware faults as NVML raises them. It owns one
// goroutine, from Start until Stop, that waits on an NVML event set covering
// every device. Use it once: Start, then Stop.
type healthWatcher struct {
	nvml    *NVML
	onFault func(error)
	ignored map[uint64]bool
	wait    time.Duration
	log     *slog.Logger
	worker  nvmlWorker

	mu      sync.Mutex
	set     nvml.EventSet
	watched []int
}

// newHealthWatcher returns a watcher over every device n sees. It fails with
// messages.ErrConfig if OnFault is missing or WaitTimeout is out of range.
func newHealthWatcher(n *NVML, cfg HealthConfig) (*healthWatcher, error) {
	if cfg.OnFault == nil {
		return nil, fmt.Errorf("%w: health watcher needs an OnFault callback", messages.ErrConfig)
	}
	wait := cfg.WaitTimeout
	if wait == 0 {
		wait = defaultHealthWaitTimeout
	}
	if wait < time.Millisecond || wait > maxHealthWaitTimeout {
		return nil, fmt.Errorf("%w: health wait timeout %v out of range", messages.ErrConfig, cfg.WaitTimeout)
	}
	xids := cfg.IgnoredXIDs
	if xids == nil {
		xids = DefaultIgnoredXIDs()
	}
	ignored := make(map[uint64]bool, len(xids))
	for _, xid := range xids {
		ignored[xid] = true
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &healthWatcher{
		nvml:    n,
		onFault: cfg.OnFault,
		ignored: ignored,
		wait:    wait,
		log:     log,
		worker:  newNVMLWorker("health watcher"),
	}, nil
}

// Start registers every device for health events and starts the watcher's
// goroutine, which runs until ctx is cancelled or Stop is called. A device
// that cannot report events is logged and left unwatched. Starting twice
// fails with messages.ErrInvalidInput, after Stop with messages.ErrStopped.
func (w *healthWatcher) Start(ctx context.Context) error {
	return w.worker.start(ctx, func() (func(context.Context), error) {
		set, watched, err := w.register()
		if err != nil {
			return nil, err
		}
		w.mu.Lock()
		w.set, w.watched = set, watched
		w.mu.Unlock()
		return func(ctx context.Context) { w.run(ctx, set) }, nil
	})
}

// Stop ends the watcher's goroutine, waits for it (at most about one
// WaitTimeout) and frees the event set. It is safe to call more than once and
// before Start, but not from OnFault.
func (w *healthWatcher) Stop() {
	if !w.worker.stop() {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if ret := w.set.Free(); ret != nvml.SUCCESS {
		w.log.Warn("health: freeing the NVML event set failed", "error", ret.Error())
	}
}

// Done is closed when the watcher's goroutine has ended, or at Stop if it
// never started.
func (w *healthWatcher) Done() <-chan struct{} { return w.worker.doneChan() }

// Watched lists the devices registered for health events, once started.
func (w *healthWatcher) Watched() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.watched...)
}

// register creates the event set and registers each device for the health
// events it supports.
func (w *healthWatcher) register() (nvml.EventSet, []int, error) {
	count, err := w.nvml.DeviceCount()
	if err != nil {
		return nil, nil, err
	}
	set, ret := w.nvml.lib.EventSetCreate()
	if ret != nvml.SUCCESS {
		return nil, nil, fmt.Errorf("%w: nvml event set: %v", messages.ErrDeviceFault, ret)
	}
	var watched []int
	for i := range count {
		ok, err := w.registerDevice(set, i)
		if err != nil {
			if ret := set.Free(); ret != nvml.SUCCESS {
				err = errors.Join(err, fmt.Errorf("%w: nvml event set free: %v", messages.ErrDeviceFault, ret))
			}
			return nil, nil, err
		}
		if ok {
			watched = append(watched, i)
		}
	}
	return set, watched, nil
}

// registerDevice registers one device; false means it cannot report events.
func (w *healthWatcher) registerDevice(set nvml.EventSet, index int) (bool, error) {
	dev, err := w.nvml.handle(index)
	if err != nil {
		return false, err
	}
	supported, ret := dev.GetSupportedEventTypes()
	switch ret {
	case nvml.SUCCESS:
	case nvml.ERROR_NOT_SUPPORTED:
		w.log.Warn("health: device reports no events; it is not watched", "device", index)
		return false, nil
	default:
		return false, deviceError(index, "supported event types", ret)
	}
	mask := healthEvents & supported
	if mask&nvml.EventTypeXidCriticalError == 0 || mask&nvml.EventTypeDoubleBitEccError == 0 {
		w.log.Warn("health: device reports only some fault events", "device", index,
			"xid", mask&nvml.EventTypeXidCriticalError != 0, "double_bit_ecc", mask&nvml.EventTypeDoubleBitEccError != 0)
	}
	if mask == 0 {
		return false, nil
	}
	switch ret := dev.RegisterEvents(mask, set); ret {
	case nvml.SUCCESS:
		return true, nil
	case nvml.ERROR_NOT_SUPPORTED:
		w.log.Warn("health: device refused event registration; it is not watched", "device", index)
		return false, nil
	default:
		return false, deviceError(index, "register events", ret)
	}
}

// run waits for events until ctx ends. A failed wait is logged when its cause
// changes and waited out, so a broken event set cannot spin.
func (w *healthWatcher) run(ctx context.Context, set nvml.EventSet) {
	timeoutMS := uint32(w.wait.Milliseconds())
	lastFailure := nvml.SUCCESS
	for ctx.Err() == nil {
		ev, ret := set.Wait(timeoutMS)
		switch ret {
		case nvml.SUCCESS:
			lastFailure = nvml.SUCCESS
			w.handle(ev)
		case nvml.ERROR_TIMEOUT:
			lastFailure = nvml.SUCCESS
		default:
			if ret != lastFailure {
				w.log.Warn("health: waiting for NVML events failed", "error", ret.Error())
				lastFailure = ret
			}
			w.pause(ctx)
		}
	}
}

// pause waits one WaitTimeout or until ctx ends.
func (w *healthWatcher) pause(ctx context.Context) {
	t := time.NewTimer(w.wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// handle classifies one event: a fault goes to OnFault, the rest to the log.
func (w *healthWatcher) handle(ev nvml.EventData) {
	device, uuid := eventDevice(ev)
	switch {
	case ev.EventType&nvml.EventTypeXidCriticalError != 0:
		xid := ev.EventData
		if w.ignored[xid] {
			w.log.Warn("health: application XID, not a device fault", "device", device, "uuid", uuid, "xid", xid)
			return
		}
		w.fault(&DeviceFaultError{Index: device, UUID: uuid, Kind: FaultXID, XID: xid})
	case ev.EventType&nvml.EventTypeDoubleBitEccError != 0:
		w.fault(&DeviceFaultError{Index: device, UUID: uuid, Kind: FaultDoubleBitECC})
	case ev.EventType&nvml.EventTypeSingleBitEccError != 0:
		w.log.Info("health: corrected single-bit ECC error", "device", device, "uuid", uuid)
	default:
		w.log.Debug("health: unexpected NVML event", "device", device, "uuid", uuid, "type", ev.EventType)
	}
}

// fault hands f to OnFault, wrapped so that its text starts with the kind.
func (w *healthWatcher) fault(f *DeviceFaultError) {
	w.onFault(fmt.Errorf("%w: %w", messages.ErrDeviceFault, f))
}

// eventDevice returns the NVML index and UUID of the device an event names:
// -1 for an index NVML cannot say, "" for such a UUID.
func eventDevice(ev nvml.EventData) (index int, uuid string) {
	if ev.Device == nil {
		return -1, ""
	}
	index, ret := ev.Device.GetIndex()
	if ret != nvml.SUCCESS {
		index = -1
	}
	uuid, ret = ev.Device.GetUUID()
	if ret != nvml.SUCCESS {
		uuid = ""
	}
	return index, uuid
}
