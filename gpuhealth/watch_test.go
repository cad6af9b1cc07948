package gpuhealth

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/internal/nvmltest"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
	"github.com/vramseal/vramseal/supervisor"
)

var _ Runtime = (*supervisor.Runtime)(nil)
var _ ShardLister = (*supervisor.Runtime)(nil)

// fakeRuntime records what GPU health asks of a runtime.
type fakeRuntime struct {
	failStops chan error
	evictions chan evictCall
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{failStops: make(chan error, 16), evictions: make(chan evictCall, 16)}
}

func (f *fakeRuntime) FailStop(cause error) { f.failStops <- cause }

func (f *fakeRuntime) Evict(_ context.Context, device int, reason string) ([]sealer.Shard, error) {
	f.evictions <- evictCall{device, reason}
	return nil, nil
}

// uuidDevice is a device known only by its UUID: any other call panics.
type uuidDevice struct {
	cuda.Device
	uuid string
}

func (d uuidDevice) Properties() cuda.Properties { return cuda.Properties{UUID: d.uuid} }

// openWatch opens a Watch over machine for runtime devices that are NVML's
// GPUs nvmlIndex (nvmltest.NoDevice: a GPU NVML does not know), and closes it
// when the test ends. logs reads what it has logged so far.
func openWatch(t *testing.T, machine *nvmltest.Machine, nvmlIndex ...int) (w *Watch, logs func() string) {
	t.Helper()
	var devices []cuda.Device
	for i, index := range nvmlIndex {
		uuid := fmt.Sprintf("GPU-00000000-0000-0000-0000-%012d", i)
		if index != nvmltest.NoDevice {
			uuid = machine.UUID(t, index)
		}
		devices = append(devices, uuidDevice{uuid: uuid})
	}
	// A file takes writes from the watchers' goroutines safely.
	path := filepath.Join(t.TempDir(), "log")
	f, err := os.Create(path)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, f.Close()) })
	w = Open(func() (*NVML, error) { return NewNVML(machine.Server) }, devices, slog.New(slog.NewTextHandler(f, nil)))
	require.NotNil(t, w)
	t.Cleanup(func() { require.NoError(t, w.Close()) })
	return w, func() string {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		return string(b)
	}
}

// next returns the next value on ch, failing the test if none comes.
func next[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		require.FailNow(t, "nothing came", what)
		var zero T
		return zero
	}
}

func TestWatchFailStopsTheRuntimeOnFaultsOnItsGPUs(t *testing.T) {
	machine := nvmltest.New(t)
	// The runtime's device 0 is NVML's 3 and device 1 NVML's 6.
	w, logs := openWatch(t, machine, 3, 6)
	rt := newFakeRuntime()
	w.StartHealth(rt, nil)

	machine.Events.Send(t, 6, nvml.EventTypeXidCriticalError, 13) // the application's: logged
	machine.Events.Send(t, 5, nvml.EventTypeXidCriticalError, 79) // not the worker's GPU: logged
	machine.Events.Send(t, 6, nvml.EventTypeXidCriticalError, 79)

	cause := next(t, rt.failStops, "a fail-stop")
	assert.EqualError(t, cause, fmt.Sprintf("NVML health event: device fault: device 1 (NVML 6, %s): XID 79", machine.UUID(t, 6)))
	assert.ErrorIs(t, cause, messages.ErrDeviceFault)
	assert.Empty(t, rt.failStops, "only the fatal XID on the worker's GPU fail-stops")
	assert.Contains(t, logs(), "xid=13")
	assert.Contains(t, logs(), "does not use")
}

func TestWatchEvictsAGPUOtherProcessesUse(t *testing.T) {
	machine := nvmltest.New(t)
	w, _ := openWatch(t, machine, 5, 2)
	rt := newFakeRuntime()
	ready := NewReadiness(w.NotReady)
	ready.SealingDone(0, 0)
	require.NoError(t, ready.Check(context.Background(), &fakeShards{}, make(chan struct{}), time.Now()))
	machine.Compute(2).Set(nvml.SUCCESS, uint32(os.Getpid()), 4242)
	machine.Compute(7).Set(nvml.SUCCESS, 777) // a GPU the worker does not use

	require.NoError(t, w.StartContention(ContentionEvict, 5*time.Millisecond, rt, ready))

	assert.Equal(t, evictCall{1, "foreign processes [4242]"}, next(t, rt.evictions, "an eviction"))
	assert.EqualError(t, ready.Check(context.Background(), &fakeShards{}, make(chan struct{}), time.Now()),
		"device 1 evicted: foreign processes [4242]")
	w.StopWatchers()
	assert.Empty(t, rt.evictions, "only the worker's GPU is evicted")
	assert.Empty(t, rt.failStops)
}

func TestWatchSaysWhenNVMLDistrustsAGPUsMemory(t *testing.T) {
	machine := nvmltest.New(t)
	w, _ := openWatch(t, machine, 3, 6)
	require.NoError(t, w.NotReady())

	machine.SetRowRemapFailed(6, true)
	assert.EqualError(t, w.NotReady(), "device 1 is not fit for sealed weights: NVML device 6: a memory row remap failed; the GPU needs service")
	machine.SetRowRemapFailed(6, false)
	machine.SetRetiredPagesPending(3, true)
	assert.EqualError(t, w.NotReady(), "device 0 is not fit for sealed weights: NVML device 3: memory pages are pending retirement; reset the GPU")
}

func TestOpenWithoutNVMLWatchesNothing(t *testing.T) {
	var logs bytes.Buffer
	w := Open(func() (*NVML, error) { return nil, fmt.Errorf("%w: no libnvidia-ml.so.1", cuda.ErrNoDriver) },
		[]cuda.Device{uuidDevice{uuid: "GPU-a"}}, slog.New(slog.NewTextHandler(&logs, nil)))
	assert.Nil(t, w)
	assert.Contains(t, logs.String(), "level=WARN")
	assert.Contains(t, logs.String(), "NVML unavailable")
}

func TestWatchOnFaultNamesTheRuntimeDevice(t *testing.T) {
	wrap := func(f *DeviceFaultError) error { return fmt.Errorf("%w: %w", messages.ErrDeviceFault, f) }
	tests := []struct {
		name  string
		fault error
		// cause is the fail-stop's; empty when the fault is only logged.
		cause string
	}{
		{
			name:  "matched by UUID",
			fault: wrap(&DeviceFaultError{Index: 6, UUID: "GPU-b", Kind: FaultXID, XID: 79}),
			cause: "NVML health event: device fault: device 1 (NVML 6, GPU-b): XID 79",
		},
		{
			name:  "matched by UUID when NVML has no index",
			fault: wrap(&DeviceFaultError{Index: -1, UUID: "GPU-a", Kind: FaultDoubleBitECC}),
			cause: "NVML health event: device fault: device 0 (NVML 3, GPU-a): double-bit ECC error",
		},
		{
			name:  "matched by index when NVML has no UUID",
			fault: wrap(&DeviceFaultError{Index: 3, Kind: FaultXID, XID: 94}),
			cause: "NVML health event: device fault: device 0 (NVML 3, GPU-a): XID 94",
		},
		{
			name:  "the UUID decides over the index",
			fault: wrap(&DeviceFaultError{Index: 3, UUID: "GPU-z", Kind: FaultXID, XID: 79}),
		},
		{
			name:  "another GPU by index",
			fault: wrap(&DeviceFaultError{Index: 5, Kind: FaultXID, XID: 79}),
		},
		{
			name:  "a GPU NVML cannot name",
			fault: wrap(&DeviceFaultError{Index: -1, Kind: FaultXID, XID: 79}),
			cause: "NVML health event on a GPU NVML cannot name: device fault: device -1: XID 79",
		},
		{
			name:  "an untyped fault",
			fault: fmt.Errorf("%w: device 2: XID 79", messages.ErrDeviceFault),
			cause: "NVML health event on a GPU NVML cannot name: device fault: device 2: XID 79",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			g := &Watch{
				logger:    slog.New(slog.NewTextHandler(&logs, nil)),
				nvmlIndex: []int{3, 6, nvmltest.NoDevice},
				uuids:     []string{"GPU-a", "GPU-b", ""},
			}
			rt := newFakeRuntime()
			g.onFault(rt, tt.fault)

			if tt.cause == "" {
				assert.Empty(t, rt.failStops, "no fail-stop")
				assert.Contains(t, logs.String(), "level=ERROR")
				assert.Contains(t, logs.String(), "does not use")
				return
			}
			require.Len(t, rt.failStops, 1)
			cause := <-rt.failStops
			assert.EqualError(t, cause, tt.cause)
			assert.ErrorIs(t, cause, messages.ErrDeviceFault)
			assert.Empty(t, logs.String(), "a fail-stop is not also logged here")
		})
	}
}

// namedSim is a simulated device that reports the UUID of a mock NVML GPU.
type namedSim struct {
	*cuda.Sim
	uuid string
}

func (d namedSim) Properties() cuda.Properties {
	p := d.Sim.Properties()
	p.UUID = d.uuid
	return p
}

// TestAnEmbeddedRuntimeFailStopsOnAFatalXID is what an embedder gets: a
// supervisor runtime, watched without the CLI, fail-stops on XID 79 on its
// GPU, audits the stop as critical and frees its VRAM.
func TestAnEmbeddedRuntimeFailStopsOnAFatalXID(t *testing.T) {
	machine := nvmltest.New(t)
	sim, err := cuda.NewSim(cuda.SimConfig{Capacity: 4 << 20, Seed: 1})
	require.NoError(t, err)
	device := namedSim{Sim: sim, uuid: machine.UUID(t, 4)}
	logger := slog.New(slog.DiscardHandler)
	watch := Open(func() (*NVML, error) { return NewNVML(machine.Server) }, []cuda.Device{device}, logger)
	require.NotNil(t, watch)
	defer func() { require.NoError(t, watch.Close()) }()
	rig, err := supervisor.MakeRig(context.Background(), supervisor.RigConfig{Config: supervisor.Config{
		Devices: []cuda.Device{device}, ChunkSize: 64 << 10, Logger: logger,
	}})
	require.NoError(t, err)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, rig.Stop(ctx))
	}()
	_, err = rig.Seal(context.Background(), messages.SealRequest{ID: "w", Data: bytes.NewReader(make([]byte, 256<<10)), Size: 256 << 10})
	require.NoError(t, err)
	watch.StartHealth(rig.Runtime, nil)

	machine.Events.Send(t, 4, nvml.EventTypeXidCriticalError, 79)

	next(t, rig.Done(), "the runtime's fail-stop")
	watch.StopWatchers()
	assert.ErrorIs(t, rig.Err(), messages.ErrDeviceFault)
	assert.Zero(t, sim.Outstanding(), "VRAM freed")
	records := rig.Audit.Records()
	require.NotEmpty(t, records)
	last := records[len(records)-1]
	assert.Equal(t, audit.EventWorkerStopped, last.Event)
	assert.Equal(t, audit.SeverityCritical, last.Severity)
}
