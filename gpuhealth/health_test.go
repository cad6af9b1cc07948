package gpuhealth

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/nvmltest"
	"github.com/vramseal/vramseal/messages"
)

// eventually is the generous deadline for something a goroutine will do.
const eventually = 10 * time.Second

// syncBuffer is a log destination safe to write from the watcher's goroutine.
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

// faultRecorder collects OnFault's errors.
type faultRecorder chan error

func (f faultRecorder) onFault(err error) { f <- err }

// next returns the next fault, failing the test if none comes.
func (f faultRecorder) next(t *testing.T) error {
	t.Helper()
	select {
	case err := <-f:
		return err
	case <-time.After(eventually):
		t.Fatal("no fault reported")
		return nil
	}
}

// assertFault checks that err is the fault want, with the text msg.
func assertFault(t *testing.T, err error, want DeviceFaultError, msg string) {
	t.Helper()
	assert.ErrorIs(t, err, messages.ErrDeviceFault)
	assert.EqualError(t, err, msg)
	var fault *DeviceFaultError
	if assert.ErrorAs(t, err, &fault) {
		assert.Equal(t, want, *fault)
	}
}

// startWatcher starts a health watcher over s with cfg, logging to the
// returned buffer, and stops it when the test ends.
func startWatcher(t *testing.T, s *server.Server, cfg HealthConfig) (*healthWatcher, faultRecorder, *syncBuffer) {
	t.Helper()
	faults := make(faultRecorder, 8)
	logs := &syncBuffer{}
	cfg.OnFault = faults.onFault
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.WaitTimeout == 0 {
		cfg.WaitTimeout = 20 * time.Millisecond
	}
	w, err := newHealthWatcher(openMockNVML(t, s), cfg)
	require.NoError(t, err)
	require.NoError(t, w.Start(context.Background()))
	t.Cleanup(w.Stop)
	return w, faults, logs
}

func TestHealthWatcherClassifiesXIDs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ignored []uint64
		xid     uint64
		fatal   bool
	}{
		{"XID 79 fallen off the bus is fatal", nil, 79, true},
		{"XID 48 double-bit ECC is fatal", nil, 48, true},
		{"XID 13 is the application's", nil, 13, false},
		{"XID 31 is the application's", nil, 31, false},
		{"XID 43 is the application's", nil, 43, false},
		{"XID 45 is the application's", nil, 45, false},
		{"XID 68 is the application's", nil, 68, false},
		{"XID 109 is the application's", nil, 109, false},
		{"configured list replaces the default", []uint64{79}, 79, false},
		{"configured list makes 13 fatal", []uint64{79}, 13, true},
		{"empty list ignores nothing", []uint64{}, 13, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			machine := nvmltest.New(t)
			s := machine.Server
			events := machine.Events
			_, faults, logs := startWatcher(t, s, HealthConfig{IgnoredXIDs: tc.ignored})

			events.Send(t, 3, nvml.EventTypeXidCriticalError, tc.xid)
			// A double-bit ECC error on another device marks the end: events
			// are handled in order, so once it is reported the XID has been.
			events.Send(t, 6, nvml.EventTypeDoubleBitEccError, 0)

			first := faults.next(t)
			if tc.fatal {
				assertFault(t, first, DeviceFaultError{Index: 3, UUID: machine.UUID(t, 3), Kind: FaultXID, XID: tc.xid},
					"device fault: device 3: XID "+uintString(tc.xid))
				first = faults.next(t)
			} else {
				assert.Contains(t, logs.String(), "xid="+uintString(tc.xid), "ignored XID is logged")
				assert.Contains(t, logs.String(), "device=3")
				assert.Contains(t, logs.String(), "uuid="+machine.UUID(t, 3))
			}
			assertFault(t, first, DeviceFaultError{Index: 6, UUID: machine.UUID(t, 6), Kind: FaultDoubleBitECC},
				"device fault: device 6: double-bit ECC error")
		})
	}
}

func TestHealthWatcherNamesFaultedDevicesAsWellAsNVMLCan(t *testing.T) {
	for _, tc := range []struct {
		name string
		// device builds the event's device from the mock GPU 5.
		device   func(d *server.Device) nvml.Device
		index    int
		withUUID bool
		msg      string
	}{
		{"index and UUID", func(d *server.Device) nvml.Device { return d }, 5, true, "device fault: device 5: XID 79"},
		{"no device", func(*server.Device) nvml.Device { return nil }, -1, false, "device fault: device -1: XID 79"},
		{"index unknown", func(d *server.Device) nvml.Device {
			d.GetIndexFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_GPU_IS_LOST }
			return d
		}, -1, true, "device fault: device -1: XID 79"},
		{"UUID unknown", func(d *server.Device) nvml.Device {
			d.GetUUIDFunc = func() (string, nvml.Return) { return "", nvml.ERROR_GPU_IS_LOST }
			return d
		}, 5, false, "device fault: device 5: XID 79"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			machine := nvmltest.New(t)
			s := machine.Server
			events := machine.Events
			want := DeviceFaultError{Index: tc.index, Kind: FaultXID, XID: 79}
			if tc.withUUID {
				want.UUID = machine.UUID(t, 5)
			}
			_, faults, _ := startWatcher(t, s, HealthConfig{})

			events.SendEvent(t, nvml.EventData{Device: tc.device(machine.Device(t, 5)), EventType: nvml.EventTypeXidCriticalError, EventData: 79})

			assertFault(t, faults.next(t), want, tc.msg)
		})
	}
}

func TestDeviceFaultError(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault DeviceFaultError
		msg   string
		event string
	}{
		{"XID", DeviceFaultError{Index: 3, UUID: "GPU-a", Kind: FaultXID, XID: 79}, "device 3: XID 79", "XID 79"},
		{"double-bit ECC", DeviceFaultError{Index: 6, Kind: FaultDoubleBitECC}, "device 6: double-bit ECC error", "double-bit ECC error"},
		{"unknown device", DeviceFaultError{Index: -1, Kind: FaultXID, XID: 94}, "device -1: XID 94", "XID 94"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := &tc.fault
			assert.EqualError(t, err, tc.msg)
			assert.Equal(t, tc.event, err.Event())
			assert.ErrorIs(t, err, messages.ErrDeviceFault)
			assert.NotErrorIs(t, err, messages.ErrSealVerificationFailed)
			assert.True(t, messages.IsFatal(err))
		})
	}
}

func TestHealthWatcherLogsSingleBitECC(t *testing.T) {
	machine := nvmltest.New(t)
	s := machine.Server
	events := machine.Events
	_, faults, logs := startWatcher(t, s, HealthConfig{})

	events.Send(t, 1, nvml.EventTypeSingleBitEccError, 0)
	events.Send(t, 2, nvml.EventTypeXidCriticalError, 79)

	assert.EqualError(t, faults.next(t), "device fault: device 2: XID 79", "the single-bit error is not a fault")
	assert.Contains(t, logs.String(), "single-bit ECC")
}

func TestHealthWatcherRegistersSupportedEvents(t *testing.T) {
	for _, tc := range []struct {
		name      string
		supported uint64
		want      uint64
		watched   bool
	}{
		{"all", nvml.EventTypeAll, nvml.EventTypeXidCriticalError | nvml.EventTypeDoubleBitEccError | nvml.EventTypeSingleBitEccError, true},
		{"no single-bit", nvml.EventTypeXidCriticalError | nvml.EventTypeDoubleBitEccError, nvml.EventTypeXidCriticalError | nvml.EventTypeDoubleBitEccError, true},
		{"XID only", nvml.EventTypeXidCriticalError | nvml.EventTypePState, nvml.EventTypeXidCriticalError, true},
		{"none of ours", nvml.EventTypePState | nvml.EventTypeClock, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			machine := nvmltest.New(t)
			s := machine.Server
			machine.SupportEvents(tc.supported)
			events := machine.Events
			w, _, _ := startWatcher(t, s, HealthConfig{})

			registered := events.Registered()
			if !tc.watched {
				assert.Empty(t, registered)
				assert.Empty(t, w.Watched())
				return
			}
			assert.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7}, w.Watched())
			require.Len(t, registered, len(s.Devices))
			for i, mask := range registered {
				assert.Equal(t, tc.want, mask, "device %d mask", i)
			}
		})
	}
}

func TestHealthWatcherSkipsDevicesWithoutEvents(t *testing.T) {
	machine := nvmltest.New(t)
	s := machine.Server
	machine.Device(t, 2).GetSupportedEventTypesFunc = func() (uint64, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	machine.Device(t, 5).RegisterEventsFunc = func(uint64, nvml.EventSet) nvml.Return { return nvml.ERROR_NOT_SUPPORTED }

	w, _, logs := startWatcher(t, s, HealthConfig{})

	assert.Equal(t, []int{0, 1, 3, 4, 6, 7}, w.Watched())
	assert.Contains(t, logs.String(), "device=2")
	assert.Contains(t, logs.String(), "device=5")
}

func TestHealthWatcherStartFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inject func(t *testing.T, machine *nvmltest.Machine)
		freed  int
	}{
		{"event set", func(_ *testing.T, machine *nvmltest.Machine) {
			machine.Server.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) { return nil, nvml.ERROR_UNKNOWN }
		}, 0},
		{"supported types", func(t *testing.T, machine *nvmltest.Machine) {
			machine.Device(t, 4).GetSupportedEventTypesFunc = func() (uint64, nvml.Return) { return 0, nvml.ERROR_GPU_IS_LOST }
		}, 1},
		{"registration", func(t *testing.T, machine *nvmltest.Machine) {
			machine.Device(t, 4).RegisterEventsFunc = func(uint64, nvml.EventSet) nvml.Return { return nvml.ERROR_GPU_IS_LOST }
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			machine := nvmltest.New(t)
			s := machine.Server
			events := machine.Events
			tc.inject(t, machine)
			w, err := newHealthWatcher(openMockNVML(t, s), HealthConfig{OnFault: func(error) {}})
			require.NoError(t, err)

			err = w.Start(context.Background())
			assert.ErrorIs(t, err, messages.ErrDeviceFault)
			w.Stop()
			assert.Empty(t, events.Set.WaitCalls(), "no wait ran")
			assert.Len(t, events.Set.FreeCalls(), tc.freed, "event sets freed")
		})
	}
}

func TestHealthWatcherKeepsWatchingAfterFailedWait(t *testing.T) {
	machine := nvmltest.New(t)
	s := machine.Server
	events := machine.Events
	_, faults, logs := startWatcher(t, s, HealthConfig{})

	for range 3 {
		events.FailWait(t, nvml.ERROR_UNKNOWN)
	}
	events.Send(t, 7, nvml.EventTypeXidCriticalError, 94)

	assert.EqualError(t, faults.next(t), "device fault: device 7: XID 94")
	assert.Equal(t, 1, bytes.Count([]byte(logs.String()), []byte("waiting for NVML events failed")),
		"a repeated failure is logged once")
}

func TestHealthWatcherStops(t *testing.T) {
	t.Run("Stop", func(t *testing.T) {
		machine := nvmltest.New(t)
		s := machine.Server
		events := machine.Events
		w, _, _ := startWatcher(t, s, HealthConfig{WaitTimeout: 100 * time.Millisecond})

		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			w.Stop()
		}()
		select {
		case <-stopped:
		case <-time.After(eventually):
			t.Fatal("Stop did not return")
		}
		assertClosed(t, w.Done())
		assert.Len(t, events.Set.FreeCalls(), 1, "the event set is freed once")
		w.Stop()
		assert.Len(t, events.Set.FreeCalls(), 1, "a second Stop frees nothing")
		assert.ErrorIs(t, w.Start(context.Background()), messages.ErrStopped)
	})
	t.Run("context", func(t *testing.T) {
		machine := nvmltest.New(t)
		s := machine.Server
		events := machine.Events
		w, err := newHealthWatcher(openMockNVML(t, s), HealthConfig{OnFault: func(error) {}, WaitTimeout: 10 * time.Millisecond})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		require.NoError(t, w.Start(ctx))

		cancel()
		select {
		case <-w.Done():
		case <-time.After(eventually):
			t.Fatal("the watcher ignored its context")
		}
		assert.Empty(t, events.Set.FreeCalls(), "the set lives until Stop")
		w.Stop()
		assert.Len(t, events.Set.FreeCalls(), 1)
	})
	t.Run("before start", func(t *testing.T) {
		w, err := newHealthWatcher(openMockNVML(t, nvmltest.New(t).Server), HealthConfig{OnFault: func(error) {}})
		require.NoError(t, err)
		w.Stop()
		assertClosed(t, w.Done())
		assert.ErrorIs(t, w.Start(context.Background()), messages.ErrStopped)
	})
	t.Run("twice started", func(t *testing.T) {
		machine := nvmltest.New(t)
		s := machine.Server
		w, _, _ := startWatcher(t, s, HealthConfig{})
		assert.ErrorIs(t, w.Start(context.Background()), messages.ErrInvalidInput)
	})
}

func TestNewHealthWatcherConfig(t *testing.T) {
	n := openMockNVML(t, nvmltest.New(t).Server)
	onFault := func(error) {}
	for _, tc := range []struct {
		name string
		cfg  HealthConfig
		ok   bool
	}{
		{"defaults", HealthConfig{OnFault: onFault}, true},
		{"one millisecond", HealthConfig{OnFault: onFault, WaitTimeout: time.Millisecond}, true},
		{"no callback", HealthConfig{}, false},
		{"negative timeout", HealthConfig{OnFault: onFault, WaitTimeout: -time.Second}, false},
		{"sub-millisecond timeout", HealthConfig{OnFault: onFault, WaitTimeout: time.Microsecond}, false},
		{"longest timeout", HealthConfig{OnFault: onFault, WaitTimeout: maxHealthWaitTimeout}, true},
		{"timeout too long", HealthConfig{OnFault: onFault, WaitTimeout: maxHealthWaitTimeout + time.Millisecond}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := newHealthWatcher(n, tc.cfg)
			if tc.ok {
				require.NoError(t, err)
				assert.NotNil(t, w)
				return
			}
			assert.ErrorIs(t, err, messages.ErrConfig)
			assert.Nil(t, w)
		})
	}
}

func TestDefaultIgnoredXIDsIsACopy(t *testing.T) {
	xids := DefaultIgnoredXIDs()
	require.Equal(t, []uint64{13, 31, 43, 45, 68, 109}, xids)
	xids[0] = 79
	assert.Equal(t, uint64(13), DefaultIgnoredXIDs()[0])
}

func TestReady(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pending func() (nvml.EnableState, nvml.Return)
		remap   func() (int, int, bool, bool, nvml.Return)
		ready   bool
		reason  string
	}{
		{"healthy", nil, nil, true, ""},
		{"pages pending retirement",
			func() (nvml.EnableState, nvml.Return) { return nvml.FEATURE_ENABLED, nvml.SUCCESS }, nil,
			false, "pending retirement"},
		{"retirement not supported",
			func() (nvml.EnableState, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }, nil,
			true, ""},
		{"retirement query fails",
			func() (nvml.EnableState, nvml.Return) { return 0, nvml.ERROR_GPU_IS_LOST }, nil,
			false, "cannot query retired pages"},
		{"row remap failed", nil,
			func() (int, int, bool, bool, nvml.Return) { return 0, 3, false, true, nvml.SUCCESS },
			false, "row remap failed"},
		{"row remap pending only", nil,
			func() (int, int, bool, bool, nvml.Return) { return 1, 0, true, false, nvml.SUCCESS },
			true, ""},
		{"row remap not supported", nil,
			func() (int, int, bool, bool, nvml.Return) { return 0, 0, false, false, nvml.ERROR_NOT_SUPPORTED },
			true, ""},
		{"row remap query fails", nil,
			func() (int, int, bool, bool, nvml.Return) { return 0, 0, false, false, nvml.ERROR_UNKNOWN },
			false, "cannot query row remapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			machine := nvmltest.New(t)
			s := machine.Server
			d := machine.Device(t, 4)
			if tc.pending != nil {
				d.GetRetiredPagesPendingStatusFunc = tc.pending
			}
			if tc.remap != nil {
				d.GetRemappedRowsFunc = tc.remap
			}
			n := openMockNVML(t, s)

			ready, reason := n.Ready(4)
			assert.Equal(t, tc.ready, ready)
			if tc.ready {
				assert.Empty(t, reason)
			} else {
				assert.Contains(t, reason, "device 4")
				assert.Contains(t, reason, tc.reason)
			}
			other, _ := n.Ready(3)
			assert.True(t, other, "the other devices stay ready")
		})
	}
	t.Run("no such device", func(t *testing.T) {
		ready, reason := openMockNVML(t, nvmltest.New(t).Server).Ready(8)
		assert.False(t, ready)
		assert.NotEmpty(t, reason)
	})
}

// assertClosed checks ch is closed.
func assertClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	default:
		t.Error("channel not closed")
	}
}

// uintString formats n in decimal.
func uintString(n uint64) string {
	return strconv.FormatUint(n, 10)
}
