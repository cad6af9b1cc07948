package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/gpuhealth"
	"github.com/vramseal/vramseal/internal/backend"
	"github.com/vramseal/vramseal/internal/simfault"
	"github.com/vramseal/vramseal/internal/units"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/model"
	"github.com/vramseal/vramseal/sealer"
	"github.com/vramseal/vramseal/share"
	"github.com/vramseal/vramseal/supervisor"
)

// How long shutting down may take before it is cut short.
const (
	serverShutdownTimeout  = 5 * time.Second
	runtimeShutdownTimeout = time.Minute
)

// worker is one "vramseal run": what it has opened so far, each released by
// close in reverse order.
type worker struct {
	opts   *runOptions
	logger *slog.Logger
	gpus   gpuhealth.Source
	// service tells systemd how the worker stands, when systemd runs it.
	service *serviceManager

	srcs     []*model.Source
	identity *model.Identity   // what the model must be, from the identity flags
	listener net.Listener      // until the server takes it
	shareLn  *net.UnixListener // --serve's socket, until the lease server takes it
	devices  *backend.Set      // until the runtime is given them
	sims     []*cuda.Sim       // the simulated devices, for --sim-fault
	watch    *gpuhealth.Watch  // NVML's watch over real GPUs; nil without
	keys     *supervisor.Keys
	auditLog *audit.Log
	heads    *audit.HeadPublisher // publishes the log's head; closed after the log
	ready    *gpuhealth.Readiness
	scrub    *scrubReport
	flip     *simfault.Flip // --sim-fault's bit, once planned
	// logFailed is set when the audit log failed: records since are lost.
	logFailed bool
	rt        *supervisor.Runtime
	server    *httpServer
	share     *share.Server // --serve's lease server
}

// run is "vramseal run": check everything that can be checked before
// touching a device, start the worker, seal, verify, serve until stopped,
// and shut down.
func (o *runOptions) run(ctx context.Context, a *app, files []string) (err error) {
	w := &worker{opts: o, logger: a.logger, gpus: a.gpus, service: newServiceManager(a.logger)}
	defer func() { err = w.close(err) }()
	if err := w.prepare(files); err != nil {
		return err
	}
	if err := w.start(ctx); err != nil {
		return err
	}
	err = w.sealAndServe(ctx, &progress{terminal: a.stderrIsTerminal, out: a.stderr, logger: a.logger, logEvery: progressLogInterval})
	if ctx.Err() != nil && w.rt.Err() == nil {
		w.logger.Info("stopping", "reason", "signal received")
		return nil
	}
	return err
}

// prepare checks the flags, files, token, listen address and devices, and
// that every shard fits, before anything is sealed or logged to the audit log.
func (w *worker) prepare(files []string) error {
	o := w.opts
	if err := o.validate(); err != nil {
		return err
	}
	srcs, err := w.openModel(files)
	if errors.Is(err, messages.ErrModelRejected) {
		return w.recordRefusal(err)
	}
	if err != nil {
		return err
	}
	w.srcs = srcs
	o.warnAuditVolume(len(w.srcs), w.logger)
	var token []byte
	if path := tokenPath(o.tokenFile); path != "" {
		t, err := readToken(path)
		if err != nil {
			return err
		}
		token = t
	}
	defer clear(token)
	if o.listen != "" {
		ln, err := listen(o.listen)
		if err != nil {
			return err
		}
		w.listener = ln
	}
	if o.serve.path != "" {
		ln, err := share.ListenSocket(o.serve.path)
		if err != nil {
			return withExitCode(exitUsage, fmt.Errorf("--serve: %w", err))
		}
		w.shareLn = ln
	}
	o.backend.shareable = o.serve.path != "" // --serve: memory other processes may map
	devices, err := o.backend.openDevices(w.gpus)
	if err != nil {
		return err
	}
	w.devices, w.sims = devices, devices.Sims
	if !o.chunkSizeSet {
		o.chunkSize.bytes = defaultChunkSize(devices.Devices)
	}
	w.logBackend()
	if o.simFault.set && !devices.Simulated() {
		return simFaultOnRealGPUsError()
	}
	if !devices.Simulated() {
		w.watch = gpuhealth.Open(w.gpus.OpenNVML, devices.Devices, w.logger)
	}
	if err := w.checkPlacement(); err != nil {
		return err
	}
	return w.deriveKeys(token)
}

// recordRefusal writes the critical ModelRejected record of a model refused
// before anything was sealed (a file unlisted, not covered by the signature,
// missing, or checked on the host and different), so that the audit log
// says which files, and returns refusal. The record needs the worker's keys,
// so the token is read and the devices opened as for a run; where that
// fails, the refusal stands without its record, and the log says why.
func (w *worker) recordRefusal(refusal error) error {
	o := w.opts
	var token []byte
	if path := tokenPath(o.tokenFile); path != "" {
		t, err := readToken(path)
		if err != nil {
			w.logger.Warn("the refusal is not in the audit log: the token cannot be read", "error", err)
			return refusal
		}
		token = t
	}
	defer clear(token)
	devices, err := o.backend.openDevices(w.gpus)
	if err != nil {
		w.logger.Warn("the refusal is not in the audit log: the devices cannot be opened", "error", err)
		return refusal
	}
	w.devices = devices
	if err := w.deriveKeys(token); err != nil {
		w.logger.Warn("the refusal is not in the audit log", "error", err)
		return refusal
	}
	log, err := audit.Open(o.auditLog, audit.LogConfig{Key: w.keys.Audit, WorkerID: o.workerID, Logger: w.logger})
	if err != nil {
		w.logger.Warn("the refusal is not in the audit log", "error", err)
		return refusal
	}
	w.auditLog = log
	w.keys.Audit.Zero()
	fields := map[string]any{"error": refusal.Error(), "sealed": false}
	var rej *messages.RejectedError
	if errors.As(refusal, &rej) {
		fields["expected"], fields["actual"] = rej.Expected, rej.Actual
	}
	if files, source := model.RefusedFiles(refusal); len(files) > 0 {
		fields["file"], fields["files"], fields["source"] = files[0], files, source
	}
	ctx, cancel := context.WithTimeout(context.Background(), runtimeShutdownTimeout)
	defer cancel()
	if err := log.Record(ctx, audit.Record{Event: audit.EventModelRejected, Severity: audit.SeverityCritical, Fields: fields}); err != nil {
		w.logger.Warn("the refusal is not in the audit log", "error", err)
	}
	return refusal
}

// logBackend writes the run's first log line: which devices it uses and why.
func (w *worker) logBackend() {
	d := w.devices
	if d.Simulated() {
		attrs := []any{"backend", backendSim, "devices", len(d.Devices), "vram_per_device", formatSize(w.opts.backend.simVRAM.bytes)}
		if d.Reason != "" {
			attrs = append(attrs, "reason", d.Reason)
		}
		w.logger.Info("using simulated GPUs", attrs...)
		return
	}
	w.logger.Info("using NVIDIA GPUs", "backend", backendCUDA, "devices", len(d.Devices))
	for i, dev := range d.Devices {
		p := dev.Properties()
		w.logger.Info("GPU", "device", i, "name", p.Name, "uuid", p.UUID, "memory", units.Bytes(p.TotalMemory),
			"compute_capability", fmt.Sprintf("%d.%d", p.ComputeMajor, p.ComputeMinor))
	}
}

// deriveKeys derives the worker's keys from token (zeroing it), or, on
// simulated devices when none was given, from the token kept beside the
// audit log for such runs (see simToken).
func (w *worker) deriveKeys(token []byte) error {
	if token == nil {
		if !w.devices.Simulated() {
			return usageErrorf("real GPUs need a worker token; pass --token-file PATH or set %s, and %s", tokenFileEnv, tokenHowTo)
		}
		t, path, created, err := simToken(w.opts.auditLog)
		if err != nil {
			return err
		}
		token = t
		how := "from an earlier run"
		if created {
			how = "made now"
		}
		w.logger.Info("no worker token given: using the token kept beside the audit log for runs on simulated GPUs; real GPUs need --token-file",
			"token_file", path, "token", how)
	}
	keys, err := deriveKeys(token, w.opts.workerID)
	if err != nil {
		return err
	}
	w.keys = keys
	return nil
}

// checkPlacement checks that every shard fits on the devices as they are now.
func (w *worker) checkPlacement() error {
	available := make([]int64, len(w.devices.Devices))
	for i, d := range w.devices.Devices {
		free, _, err := d.MemInfo()
		if err != nil {
			return fmt.Errorf("device %d: %w", i, err)
		}
		available[i] = model.AvailableBytes(free, w.opts.headroom.bytes)
	}
	err := model.Plan(available, w.srcs)
	if err == nil {
		return nil
	}
	fix := "free memory on the GPUs, lower --headroom, or split the model into smaller files"
	if w.devices.Simulated() {
		fix = "give the simulated devices more memory with --sim-vram, lower --headroom, or split the model into smaller files"
	}
	return withExitCode(exitUsage, fmt.Errorf("%w; %s", err, fix))
}

// start opens the audit log, starts the runtime and serves the endpoints.
func (w *worker) start(ctx context.Context) error {
	o := w.opts
	auditLog, err := audit.Open(o.auditLog, audit.LogConfig{Key: w.keys.Audit, WorkerID: o.workerID, Logger: w.logger})
	if errors.Is(err, messages.ErrIntegrityViolation) {
		return withExitCode(exitUsage, fmt.Errorf("%w; if another token or --worker-id wrote this log, pass those, or a new --audit-log path", err))
	}
	if err != nil {
		return withExitCode(exitUsage, err)
	}
	w.auditLog = auditLog
	w.keys.Audit.Zero() // the log keeps what it needs
	uuids := make([]string, len(w.devices.Devices))
	for i, d := range w.devices.Devices {
		uuids[i] = d.Properties().UUID
	}
	m, err := newMetrics(auditLog.QueueDepth, uuids)
	if err == nil {
		err = errors.Join(m.watchAudit(auditLog.Head), m.watchHashes(w.devices.Devices))
	}
	if err != nil {
		return err
	}
	w.heads = publishHeads(auditLog, w.logger, m)
	var gpuCheck func() error
	if w.watch != nil {
		gpuCheck = w.watch.NotReady
	}
	w.ready = gpuhealth.NewReadiness(gpuCheck)
	w.scrub = newScrubReport(w.logger, o.verifyInterval)
	sink := &observedSink{next: w.heads, observers: []func(audit.Record){m.observe, w.ready.Observe, w.scrub.observe}}
	devices, kind := w.devices.Devices, w.devices.Kind
	w.devices = nil // Start owns them from the call on, even when it fails
	rt, err := supervisor.Start(context.WithoutCancel(ctx), supervisor.Config{
		Devices:        devices,
		Backend:        kind,
		Key:            w.keys.Seal,
		WorkerID:       o.workerID,
		ChunkSize:      o.chunkSize.bytes,
		VerifyInterval: o.verifyInterval,
		NoScrub:        o.verifyInterval == 0, // --verify-interval 0 turns scrubbing off
		ScrubRate:      o.scrubRate.bytesPerSecond,
		Headroom:       o.headroom.bytes,
		Audit:          sink,
		Logger:         w.logger,
		OnScrubPass: func(p supervisor.ScrubPass) {
			if p.Shards == 0 && p.Mismatches == 0 {
				return // a device that holds nothing yet: nothing was verified
			}
			w.scrub.pass(p)
			m.scrubPass(p)
		},
	})
	switch {
	case errors.Is(err, messages.ErrConfig):
		return withExitCode(exitUsage, err)
	case errors.Is(err, messages.ErrPolicyViolation):
		return withExitCode(exitFailStop, err)
	case err != nil:
		return err
	}
	w.rt = rt
	w.heads.Publish() // the head at start: the WorkerStarted record
	if w.watch != nil {
		w.watch.StartHealth(rt, o.ignoreXIDs.xids)
	}
	ready := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
		defer cancel()
		return w.ready.Check(ctx, rt, rt.Done(), time.Now()) == nil
	}
	if err := errors.Join(m.watch(rt, time.Now), m.watchWorker(ready, func() bool { return rt.Err() != nil })); err != nil {
		return err
	}
	w.logger.Info("worker started", "worker_id", o.workerID, "key", w.keys.Fingerprint(), "audit_log", o.auditLog,
		"verify_interval", o.verifyInterval, "chunk_size", formatSize(o.chunkSize.bytes))
	if o.serve.path != "" {
		if err := w.startSharing(m); err != nil {
			return err
		}
	}
	if w.listener != nil {
		addr := w.listener.Addr().String()
		w.server = startServer(w.listener, newHandler(rt, rt.Done(), m, w.ready, w.auditLog.Head), defaultServerLimits, w.logger)
		w.listener = nil
		w.logger.Info("serving", "addr", addr, "endpoints", "/ /metrics /healthz /readyz /shards /audit/head")
	}
	return nil
}

// sealAndServe seals and verifies every shard, starts looking for other
// processes on real GPUs, then waits until ctx ends, --duration has passed or
// the runtime stops, injecting --sim-fault on the way.
func (w *worker) sealAndServe(ctx context.Context, p *progress) error {
	shards, err := sealModel(ctx, w.rt, w.srcs, p, w.logger)
	if err != nil {
		return err
	}
	if err := w.identity.RecordVerified(ctx, w.rt, w.logger); err != nil {
		return err
	}
	if err := model.VerifyAll(ctx, w.rt, shards, w.logger); err != nil {
		return err
	}
	w.ready.SealingDone(len(shards), w.opts.freshnessWindow(fullestDevice(shards)))
	if warning := w.opts.scrubCoverageWarning(fullestDevice(shards)); warning != "" {
		w.ready.Warn(warning)
		w.logger.Warn("the scrub cannot keep shards as fresh as --verify-interval asks: " + warning)
	}
	w.logger.Info("every shard sealed and verified", "shards", len(shards), "verify_interval", w.opts.verifyInterval)
	w.heads.Publish() // the head that holds every seal
	w.service.ready(fmt.Sprintf("shards sealed and verified: %d", len(shards)), w.runtimeAnswers)
	if w.watch != nil {
		if err := w.watch.StartContention(w.opts.contention, w.opts.contentionInterval, w.rt, w.ready); err != nil {
			return err
		}
	}
	var durationC, faultC <-chan time.Time
	if w.opts.duration > 0 {
		t := time.NewTimer(w.opts.duration)
		defer t.Stop()
		durationC = t.C
	}
	if w.opts.simFault.set {
		w.flip = simfault.Plan(shards, w.opts.seed.seed())
		w.logger.Info("sim-fault: one bit flip planned", append(w.flip.LogAttrs(), "after", w.opts.simFault.after.String())...)
		w.warnUndetectable(fullestDevice(shards))
		t := time.NewTimer(w.opts.simFault.after)
		defer t.Stop()
		faultC = t.C
	}
	var serverDone <-chan struct{}
	if w.server != nil {
		serverDone = w.server.done
	}
	auditFailed := w.auditLog.Failed()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-durationC:
			w.logger.Info("stopping", "reason", "--duration elapsed")
			return nil
		case <-w.rt.Done():
			return nil // close reports the fail-stop
		case <-auditFailed:
			// Removed or replaced while nothing was recorded. The channel
			// is closed now: hear it once, then wait for the stop.
			auditFailed = nil
			w.rt.FailStop(w.auditLog.Err())
		case <-serverDone:
			return fmt.Errorf("HTTP server stopped: %w", w.server.err)
		case <-faultC:
			faultC = nil
			if err := w.flip.Apply(w.sims, time.Now()); err != nil {
				return fmt.Errorf("--sim-fault: %w", err)
			}
			w.logger.Warn("sim-fault: flipped one bit in simulated VRAM", w.flip.LogAttrs()...)
		}
	}
}

// runtimeAnswers reports whether the runtime answers a request within ctx:
// what the systemd watchdog's pings stand for.
func (w *worker) runtimeAnswers(ctx context.Context) error {
	_, err := w.rt.Shards(ctx)
	return err
}

// fullestDevice is the most bytes sealed onto any one device.
func fullestDevice(shards []sealer.Shard) int64 {
	perDevice := map[int]int64{}
	var most int64
	for _, s := range shards {
		perDevice[s.Device] += s.Size
		most = max(most, perDevice[s.Device])
	}
	return most
}

// close releases everything the worker opened, in reverse order, and decides
// the outcome: a fail-stop exits 3 with its cause, whatever else happened,
// and a run that planted a flip and did not catch it exits 1.
func (w *worker) close(runErr error) error {
	w.service.stopping("stopping")
	var stopErrs []error
	if w.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), serverShutdownTimeout)
		stopErrs = append(stopErrs, w.server.shutdown(ctx))
		cancel()
	}
	if w.listener != nil {
		w.listener.Close()
	}
	if w.shareLn != nil {
		w.shareLn.Close()
	}
	if w.watch != nil {
		w.watch.StopWatchers() // before the runtime stops: they call into it
	}
	var failStop error
	if w.rt != nil {
		ctx, cancel := context.WithTimeout(context.Background(), runtimeShutdownTimeout)
		stopErrs = append(stopErrs, w.rt.Stop(ctx))
		cancel()
		failStop = w.rt.Err()
		w.scrub.summary()
	}
	if w.share != nil {
		// After the runtime: its stop revokes every lease, and the server
		// tells each client before the memory is freed.
		stopErrs = append(stopErrs, w.share.Close())
	}
	if w.devices != nil {
		stopErrs = append(stopErrs, w.devices.Close())
	}
	if w.watch != nil {
		stopErrs = append(stopErrs, w.watch.Close())
	}
	if w.auditLog != nil {
		err := w.auditLog.Close()
		if errors.Is(err, audit.ErrLogFailed) {
			w.logFailed = true
			if failStop == nil {
				failStop = err // the log failed at the end: what was recorded since is lost
			}
		} else {
			stopErrs = append(stopErrs, err)
		}
	}
	if w.heads != nil {
		w.heads.Close() // the head at stop: the log's last record
	}
	if w.keys != nil {
		w.keys.Zero()
	}
	model.Close(w.srcs)
	stopErr := errors.Join(stopErrs...)
	if failStop != nil {
		return withExitCode(exitFailStop, fmt.Errorf("fail-stop: %w; %s", failStop, w.stopped(stopErr)))
	}
	if err := errors.Join(runErr, stopErr); err != nil || w.rt == nil {
		return err
	}
	w.logger.Info("stopped: "+w.stopped(nil), "audit_log", w.opts.auditLog)
	if w.opts.simFault.set {
		return undetectedError(w.flip, w.opts)
	}
	return nil
}

// stopped says what the stop left behind: the VRAM freed and the log closed
// unless stopErr or a failed log says otherwise.
func (w *worker) stopped(stopErr error) string {
	switch {
	case w.logFailed: // stopErr then says which records could not be made durable
		return fmt.Sprintf("the audit log failed: it holds %d durable records", w.auditLog.Stats().LastSeq)
	case stopErr != nil:
		return "stopping failed too: " + strings.ReplaceAll(stopErr.Error(), "\n", "; ")
	}
	return fmt.Sprintf("VRAM freed, audit log closed (%d records)", w.auditLog.Stats().LastSeq)
}
