package gpuhealth

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/internal/nvmltest"
	"github.com/vramseal/vramseal/messages"
)

var _ pflag.Value = (*ContentionPolicy)(nil)

// ownPID stands for this process in the monitor tests.
const ownPID = 1000

func TestParseContentionPolicy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ContentionPolicy
		ok   bool
	}{
		{"ignore", ContentionIgnore, true},
		{"warn", ContentionWarn, true},
		{"evict", ContentionEvict, true},
		{"", 0, false},
		{"Evict", 0, false},
		{" warn", 0, false},
		{"kill", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseContentionPolicy(tc.in)
			if !tc.ok {
				assert.ErrorIs(t, err, messages.ErrConfig)
				assert.Zero(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.in, got.String(), "String round-trips")
		})
	}
}

func TestContentionPolicyZeroValueIsNotAPolicy(t *testing.T) {
	var p ContentionPolicy
	assert.NotContains(t, []ContentionPolicy{ContentionIgnore, ContentionWarn, ContentionEvict}, p)
	_, err := parseContentionPolicy(p.String())
	assert.ErrorIs(t, err, messages.ErrConfig)
}

func TestContentionPolicyFlag(t *testing.T) {
	flags := pflag.NewFlagSet("test", pflag.ContinueOnError)
	flags.SetOutput(&strings.Builder{})
	policy := ContentionWarn
	flags.Var(&policy, "contention", "what to do about other processes")

	require.NoError(t, flags.Parse([]string{"--contention", "evict"}))
	assert.Equal(t, ContentionEvict, policy)
	assert.Error(t, flags.Parse([]string{"--contention", "panic"}))
	assert.Equal(t, ContentionEvict, policy, "a bad value changes nothing")
}

func TestForeignProcesses(t *testing.T) {
	for _, tc := range []struct {
		name              string
		compute, graphics []uint32
		computeRet        nvml.Return
		graphicsRet       nvml.Return
		want              []uint32
		fault             bool
	}{
		{"idle", nil, nil, nvml.SUCCESS, nvml.SUCCESS, nil, false},
		{"only us", []uint32{ownPID}, nil, nvml.SUCCESS, nvml.SUCCESS, nil, false},
		{"a foreign compute process", []uint32{ownPID, 4242}, nil, nvml.SUCCESS, nvml.SUCCESS, []uint32{4242}, false},
		{"a foreign graphics process", []uint32{ownPID}, []uint32{77}, nvml.SUCCESS, nvml.SUCCESS, []uint32{77}, false},
		{"sorted without repeats", []uint32{900, ownPID, 12}, []uint32{12, 5}, nvml.SUCCESS, nvml.SUCCESS, []uint32{5, 12, 900}, false},
		{"graphics not supported", []uint32{31}, nil, nvml.SUCCESS, nvml.ERROR_NOT_SUPPORTED, []uint32{31}, false},
		{"compute query fails", nil, nil, nvml.ERROR_GPU_IS_LOST, nvml.SUCCESS, nil, true},
		{"graphics query fails", nil, nil, nvml.SUCCESS, nvml.ERROR_UNKNOWN, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			machine := nvmltest.New(t)
			s := machine.Server
			compute, graphics := machine.Compute(2), machine.Graphics(2)
			compute.Set(tc.computeRet, tc.compute...)
			graphics.Set(tc.graphicsRet, tc.graphics...)
			n := openMockNVML(t, s)

			pids, err := n.ForeignProcesses(2, ownPID)
			if tc.fault {
				assert.ErrorIs(t, err, messages.ErrDeviceFault)
				assert.Contains(t, err.Error(), "device 2")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, pids)
		})
	}
	t.Run("no such device", func(t *testing.T) {
		_, err := openMockNVML(t, nvmltest.New(t).Server).ForeignProcesses(9, ownPID)
		assert.ErrorIs(t, err, messages.ErrInvalidInput)
	})
}

// contentionReport is one OnContention call.
type contentionReport struct {
	device int
	pids   []uint32
}

// newTestMonitor returns a monitor over s, not started, whose reports go to
// the returned channel and whose log to the returned buffer.
func newTestMonitor(t *testing.T, s *server.Server, interval time.Duration) (*contentionMonitor, chan contentionReport, *syncBuffer) {
	t.Helper()
	reports := make(chan contentionReport, 16)
	logs := &syncBuffer{}
	m, err := newContentionMonitor(openMockNVML(t, s), contentionConfig{
		OnContention: func(device int, pids []uint32) { reports <- contentionReport{device, pids} },
		Interval:     interval,
		OwnPID:       ownPID,
		Logger:       slog.New(slog.NewTextHandler(logs, nil)),
	})
	require.NoError(t, err)
	return m, reports, logs
}

// drain returns the reports made so far.
func drain(reports chan contentionReport) []contentionReport {
	var got []contentionReport
	for {
		select {
		case r := <-reports:
			got = append(got, r)
		default:
			return got
		}
	}
}

func TestContentionMonitorReportsChanges(t *testing.T) {
	machine := nvmltest.New(t)
	s := machine.Server
	compute, graphics := machine.Compute(2), machine.Graphics(2)
	m, reports, _ := newTestMonitor(t, s, time.Hour)

	for _, step := range []struct {
		name     string
		compute  []uint32
		graphics []uint32
		want     []contentionReport
	}{
		{"only us", []uint32{ownPID}, nil, nil},
		{"a foreign process appears", []uint32{ownPID, 4242}, nil, []contentionReport{{2, []uint32{4242}}}},
		{"unchanged", []uint32{4242, ownPID}, nil, nil},
		{"another appears", []uint32{ownPID, 4242}, []uint32{777}, []contentionReport{{2, []uint32{777, 4242}}}},
		{"one leaves", []uint32{ownPID}, []uint32{777}, []contentionReport{{2, []uint32{777}}}},
		{"all leave", []uint32{ownPID}, nil, nil},
		{"one comes back", []uint32{ownPID, 4242}, nil, []contentionReport{{2, []uint32{4242}}}},
	} {
		compute.Set(nvml.SUCCESS, step.compute...)
		graphics.Set(nvml.SUCCESS, step.graphics...)
		m.poll()
		assert.Equal(t, step.want, drain(reports), step.name)
	}
}

func TestContentionMonitorLogsFailuresOnce(t *testing.T) {
	machine := nvmltest.New(t)
	s := machine.Server
	broken := machine.Compute(1)
	broken.Set(nvml.ERROR_GPU_IS_LOST)
	shared := machine.Compute(5)
	shared.Set(nvml.SUCCESS, 31337)
	m, reports, logs := newTestMonitor(t, s, time.Hour)

	m.poll()
	m.poll()
	assert.Equal(t, []contentionReport{{5, []uint32{31337}}}, drain(reports), "other devices are still watched")
	assert.Equal(t, 1, strings.Count(logs.String(), "cannot list processes"), "a repeated failure is logged once")

	broken.Set(nvml.SUCCESS, 8)
	m.poll()
	assert.Equal(t, []contentionReport{{1, []uint32{8}}}, drain(reports), "the device recovers")
	broken.Set(nvml.ERROR_GPU_IS_LOST)
	m.poll()
	assert.Equal(t, 2, strings.Count(logs.String(), "cannot list processes"), "a failure after recovery is logged again")
}

func TestContentionMonitorRuns(t *testing.T) {
	t.Run("Stop", func(t *testing.T) {
		machine := nvmltest.New(t)
		s := machine.Server
		compute := machine.Compute(6)
		m, reports, _ := newTestMonitor(t, s, 5*time.Millisecond)
		require.NoError(t, m.Start(context.Background()))
		t.Cleanup(m.Stop)

		compute.Set(nvml.SUCCESS, ownPID, 4242)
		select {
		case r := <-reports:
			assert.Equal(t, contentionReport{6, []uint32{4242}}, r)
		case <-time.After(eventually):
			t.Fatal("the foreign process was never reported")
		}
		assert.ErrorIs(t, m.Start(context.Background()), messages.ErrInvalidInput)

		m.Stop()
		assertClosed(t, m.Done())
		assert.ErrorIs(t, m.Start(context.Background()), messages.ErrStopped)
	})
	t.Run("context", func(t *testing.T) {
		m, _, _ := newTestMonitor(t, nvmltest.New(t).Server, time.Hour)
		ctx, cancel := context.WithCancel(context.Background())
		require.NoError(t, m.Start(ctx))
		t.Cleanup(m.Stop)

		cancel()
		select {
		case <-m.Done():
		case <-time.After(eventually):
			t.Fatal("the monitor ignored its context")
		}
	})
	t.Run("before start", func(t *testing.T) {
		m, _, _ := newTestMonitor(t, nvmltest.New(t).Server, time.Hour)
		m.Stop()
		assertClosed(t, m.Done())
	})
}

func TestNewContentionMonitorConfig(t *testing.T) {
	n := openMockNVML(t, nvmltest.New(t).Server)
	report := func(int, []uint32) {}
	for _, tc := range []struct {
		name string
		cfg  contentionConfig
		ok   bool
	}{
		{"defaults", contentionConfig{OnContention: report}, true},
		{"interval", contentionConfig{OnContention: report, Interval: time.Second}, true},
		{"no callback", contentionConfig{}, false},
		{"negative interval", contentionConfig{OnContention: report, Interval: -time.Second}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := newContentionMonitor(n, tc.cfg)
			if tc.ok {
				require.NoError(t, err)
				assert.NotNil(t, m)
				return
			}
			assert.ErrorIs(t, err, messages.ErrConfig)
			assert.Nil(t, m)
		})
	}
}

func TestContentionMonitorExcludesThisProcessByDefault(t *testing.T) {
	machine := nvmltest.New(t)
	s := machine.Server
	compute := machine.Compute(0)
	compute.Set(nvml.SUCCESS, uint32(os.Getpid()), 4242)
	var got []contentionReport
	m, err := newContentionMonitor(openMockNVML(t, s), contentionConfig{
		OnContention: func(device int, pids []uint32) { got = append(got, contentionReport{device, pids}) },
	})
	require.NoError(t, err)

	m.poll()
	assert.Equal(t, []contentionReport{{0, []uint32{4242}}}, got)
}
