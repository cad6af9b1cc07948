package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// serviceManager tells systemd, under a unit of Type=notify, how the worker
// stands: READY=1 once every shard is sealed and verified, STOPPING=1 when it
// begins to stop, and, when the unit sets WatchdogSec=, WATCHDOG=1 every half
// watchdog period for as long as the runtime answers. Without
// $NOTIFY_SOCKET (not run by systemd) it sends nothing.
type serviceManager struct {
	logger *slog.Logger
	// watchdog is the unit's WatchdogSec=, or zero without one.
	watchdog time.Duration

	// Set by ready while the watchdog pings.
	cancel context.CancelFunc
	done   chan struct{}
}

// newServiceManager reads the watchdog period systemd gave this process.
func newServiceManager(logger *slog.Logger) *serviceManager {
	m := &serviceManager{logger: logger}
	watchdog, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		logger.Warn("systemd watchdog settings unreadable: not pinging it", "error", err)
	}
	m.watchdog = watchdog
	return m
}

// ready tells systemd the worker is ready, with status as the unit's status
// line, and starts the watchdog pings, each sent only when alive answers
// within half a watchdog period.
func (m *serviceManager) ready(status string, alive func(context.Context) error) {
	m.notify(daemon.SdNotifyReady + "\nSTATUS=" + status)
	if m.watchdog <= 0 || m.done != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done = cancel, make(chan struct{})
	go func() {
		defer close(m.done)
		m.ping(ctx, alive)
	}()
}

// ping sends WATCHDOG=1 every half watchdog period, while alive answers in
// time, until ctx ends. A runtime that stops answering is left to the
// watchdog, which kills the worker (with SIGABRT unless the unit says
// otherwise, so Go prints every goroutine's stack).
func (m *serviceManager) ping(ctx context.Context, alive func(context.Context) error) {
	period := m.watchdog / 2
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		check, cancel := context.WithTimeout(ctx, period)
		err := alive(check)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			m.logger.Warn("the runtime did not answer: no watchdog ping", "error", err)
		default:
			m.notify(daemon.SdNotifyWatchdog)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// stopping stops the watchdog pings, waits for them, and tells systemd the
// worker is stopping, with status as the unit's status line.
func (m *serviceManager) stopping(status string) {
	if m.done != nil {
		m.cancel()
		<-m.done
	}
	m.notify(daemon.SdNotifyStopping + "\nSTATUS=" + status)
}

// notify sends state to systemd, if it listens; a failure is logged, since
// the worker runs on regardless.
func (m *serviceManager) notify(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		m.logger.Warn("cannot notify systemd", "error", fmt.Errorf("sd_notify: %w", err))
	}
}
