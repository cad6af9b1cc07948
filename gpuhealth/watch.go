package gpuhealth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
)

// Watch watches a worker's real GPUs through NVML: health events fail-stop
// the runtime, other processes on a GPU are handled as a
// ContentionPolicy says, and NVML's memory checks feed readiness. It
// owns the NVML handle and every watcher goroutine. Use it in this order:
// Open before the runtime starts, StartHealth once it runs, StartContention
// once its shards are sealed, StopWatchers before the runtime stops, and
// Close after.
type Watch struct {
	nvml   *NVML
	logger *slog.Logger
	// nvmlIndex maps each runtime device to NVML's index of the same GPU, or
	// -1 when NVML knows no GPU with its UUID.
	nvmlIndex []int
	// uuids are the runtime devices' UUIDs, by runtime index.
	uuids []string

	health     *healthWatcher
	contention *contentionMonitor
	evictor    *evictor
}

// Open opens NVML with open (such as OpenNVML) and matches devices,
// the runtime's in its order, to NVML's GPUs by UUID. Without NVML it logs a
// warning and returns nil: the worker runs, unwatched. A device NVML does not
// know is left unwatched, with a warning.
func Open(open func() (*NVML, error), devices []cuda.Device, logger *slog.Logger) *Watch {
	n, err := open()
	if err != nil {
		logger.Warn("NVML unavailable: GPU health and contention monitoring are off", "error", err)
		return nil
	}
	g := &Watch{nvml: n, logger: logger, nvmlIndex: make([]int, len(devices)), uuids: make([]string, len(devices))}
	for i, d := range devices {
		uuid := d.Properties().UUID
		g.uuids[i] = uuid
		index, err := n.IndexByUUID(uuid)
		if err != nil {
			logger.Warn("GPU unknown to NVML: its health and contention are not watched", "device", i, "uuid", uuid, "error", err)
			index = -1
		}
		g.nvmlIndex[i] = index
		if index < 0 {
			continue
		}
		logger.Info("GPU watched through NVML", "device", i, "nvml_index", index, "uuid", uuid)
		if ready, reason := n.Ready(index); !ready {
			logger.Warn("GPU not fit for sealed weights; the worker will not be ready", "device", i, "reason", reason)
		}
	}
	return g
}

// device is the runtime device that NVML numbers nvmlIndex, or -1 when the
// worker does not use that GPU.
func (g *Watch) device(nvmlIndex int) int {
	return slices.Index(g.nvmlIndex, nvmlIndex)
}

// StartHealth starts watching NVML health events. A critical XID not in
// ignoredXIDs (nil means DefaultIgnoredXIDs), or a double-bit ECC error,
// fail-stops rt when it is on a GPU the worker uses or on one NVML cannot
// name; on another GPU it is logged as an error and the worker runs on.
// Ignored XIDs are logged. If events cannot be watched, it logs a warning and
// carries on.
func (g *Watch) StartHealth(rt Runtime, ignoredXIDs []uint64) {
	h, err := newHealthWatcher(g.nvml, HealthConfig{
		OnFault:     func(err error) { g.onFault(rt, err) },
		IgnoredXIDs: ignoredXIDs,
		Logger:      g.logger,
	})
	if err == nil {
		err = h.Start(context.Background())
	}
	if err != nil {
		g.logger.Warn("GPU health events unavailable: XIDs and ECC errors are not watched", "error", err)
		return
	}
	g.health = h
	g.logger.Info("watching GPU health events", "nvml_devices", h.Watched(), "ignored_xids", ignoredXIDs)
}

// onFault handles one health fault from the health watcher's goroutine: a
// fault on one of the worker's GPUs fail-stops it with a cause that names the
// runtime device, NVML's index and UUID and the event; a fault on a GPU
// NVML cannot name fail-stops it too, as it may be the worker's; a fault on
// another GPU is only logged.
func (g *Watch) onFault(rt Runtime, err error) {
	var fault *DeviceFaultError
	if !errors.As(err, &fault) || (fault.UUID == "" && fault.Index < 0) {
		rt.FailStop(fmt.Errorf("NVML health event on a GPU NVML cannot name: %w", err))
		return
	}
	device := g.faultedDevice(fault)
	if device < 0 {
		g.logger.Error("hardware fault on a GPU this worker does not use: the worker runs on",
			"nvml_index", fault.Index, "uuid", fault.UUID, "event", fault.Event())
		return
	}
	nvmlIndex := fault.Index
	if nvmlIndex < 0 {
		nvmlIndex = g.nvmlIndex[device]
	}
	name := fmt.Sprintf("NVML %d", nvmlIndex)
	if uuid := g.uuids[device]; uuid != "" {
		name += ", " + uuid
	}
	rt.FailStop(fmt.Errorf("NVML health event: %w: device %d (%s): %s", messages.ErrDeviceFault, device, name, fault.Event()))
}

// faultedDevice is the runtime device that fault names, by UUID when NVML
// gave one and by NVML's index otherwise, or -1 when the worker does not use
// the GPU.
func (g *Watch) faultedDevice(fault *DeviceFaultError) int {
	if fault.UUID != "" {
		return slices.Index(g.uuids, fault.UUID)
	}
	return g.device(fault.Index)
}

// StartContention starts looking for other processes on the worker's GPUs
// every interval, as policy says: warn logs them; evict marks the device not
// ready in ready (which may be nil) and has rt evict its shards. Other
// processes on GPUs the worker does not use are only logged at debug level.
func (g *Watch) StartContention(policy ContentionPolicy, interval time.Duration, rt Runtime, ready *Readiness) error {
	if policy == ContentionIgnore {
		return nil
	}
	if policy == ContentionEvict {
		g.evictor = startEvictor(rt, g.logger)
	}
	m, err := newContentionMonitor(g.nvml, contentionConfig{
		OnContention: func(nvmlIndex int, pids []uint32) { g.onContention(policy, ready, nvmlIndex, pids) },
		Interval:     interval,
		Logger:       g.logger,
	})
	if err == nil {
		err = m.Start(context.Background())
	}
	if err != nil {
		return fmt.Errorf("watch for other processes on the GPUs: %w", err)
	}
	g.contention = m
	return nil
}

// onContention handles other processes appearing on a GPU. It runs on the
// contention monitor's goroutine and does not block.
func (g *Watch) onContention(policy ContentionPolicy, ready *Readiness, nvmlIndex int, pids []uint32) {
	device := g.device(nvmlIndex)
	if device < 0 {
		g.logger.Debug("other processes on a GPU this worker does not use", "nvml_index", nvmlIndex, "pids", pids)
		return
	}
	if policy == ContentionWarn {
		g.logger.Warn("other processes use a GPU that holds sealed shards", "device", device, "nvml_index", nvmlIndex, "pids", pids)
		return
	}
	reason := fmt.Sprintf("foreign processes %v", pids)
	g.logger.Warn("other processes use a GPU that holds sealed shards: evicting its shards", "device", device, "nvml_index", nvmlIndex, "pids", pids)
	if ready != nil {
		ready.Evicted(device, reason)
	}
	g.evictor.request(device, reason)
}

// NotReady says why a GPU may not hold sealed weights now, as NVML sees it
// (memory pages pending retirement, a failed row remap), or nil. It is the
// gpus check of NewReadiness.
func (g *Watch) NotReady() error {
	for device, index := range g.nvmlIndex {
		if index < 0 {
			continue
		}
		if ready, reason := g.nvml.Ready(index); !ready {
			return fmt.Errorf("device %d is not fit for sealed weights: NVML %s", device, reason)
		}
	}
	return nil
}

// StopWatchers stops the contention monitor, then any eviction under way,
// then the health watcher, and waits for each. Call it before the runtime
// stops: they call into it. Later calls do nothing.
func (g *Watch) StopWatchers() {
	if g.contention != nil {
		g.contention.Stop()
	}
	if g.evictor != nil {
		g.evictor.stop()
	}
	if g.health != nil {
		g.health.Stop()
	}
}

// Close stops the watchers, if StopWatchers has not, and shuts NVML down.
func (g *Watch) Close() error {
	g.StopWatchers()
	if err := g.nvml.Close(); err != nil {
		return fmt.Errorf("close NVML: %w", err)
	}
	return nil
}
