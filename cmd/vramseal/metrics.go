package main

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/model"
	"github.com/vramseal/vramseal/supervisor"
)

// collectTimeout bounds how long one scrape waits on the runtime.
const collectTimeout = 2 * time.Second

// Result labels of the operation counters.
const (
	resultSuccess = "success"
	resultFailure = "failure"
)

// runtimeView is what the HTTP endpoints read from a running worker.
type runtimeView interface {
	model.Capacities
	Shards(ctx context.Context) ([]messages.ShardStatus, error)
}

// metrics are the worker's Prometheus series, in a registry of their own.
// Operation counts come from the audit records the worker writes (see
// observe); memory and shard ages are read from the runtime at each scrape.
type metrics struct {
	registry *prometheus.Registry
	// uuids are the devices' UUIDs, by index, for the uuid label.
	uuids    []string
	seals    *prometheus.CounterVec
	verifies *prometheus.CounterVec
	scrubbed prometheus.Counter
	// lastPass and passDuration describe each device's last full scrub pass.
	lastPass     *prometheus.GaugeVec
	passDuration *prometheus.GaugeVec
	// headPublishedAt is when the audit log's head was last published.
	headPublishedAt prometheus.Gauge
}

// newMetrics registers the build information, the operation counters, the
// scrub pass gauges, the audit queue gauge and the process's own series.
// queueDepth reports the audit records not yet durable; uuids are the
// devices' UUIDs, by index. The runtime's series follow once it runs (see
// watch and watchWorker).
func newMetrics(queueDepth func() int, uuids []string) (*metrics, error) {
	deviceLabels := []string{"device", "uuid"}
	m := &metrics{
		registry: prometheus.NewRegistry(),
		uuids:    uuids,
		seals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vram_seal_operations_total",
			Help: "Seals attempted, by result: success (sealed and durably audited) or failure.",
		}, []string{"result"}),
		verifies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vram_verify_operations_total",
			Help: "Full verifications of a shard (on demand or by the background scrub), by result.",
		}, []string{"result"}),
		scrubbed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vram_scrubbed_bytes_total",
			Help: "Bytes of shards the background scrub re-hashed and found intact.",
		}),
		lastPass: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vram_scrub_last_pass_timestamp_seconds",
			Help: "Unix time at which the background scrub last finished a full pass over the device's shards.",
		}, deviceLabels),
		passDuration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vram_scrub_pass_duration_seconds",
			Help: "How long the device's last full background scrub pass took.",
		}, deviceLabels),
		headPublishedAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vram_audit_head_published_timestamp_seconds",
			Help: "Unix time at which the worker last published its audit log's head (the \"audit head\" log line).",
		}),
	}
	b := readBuildInfo()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "vramseal_build_info",
		Help:        "Always 1; the labels say which vramseal build this is.",
		ConstLabels: prometheus.Labels{"version": b.version, "commit": b.commit, "goversion": b.goVersion},
	})
	buildInfo.Set(1)
	for _, result := range []string{resultSuccess, resultFailure} {
		m.seals.WithLabelValues(result)
		m.verifies.WithLabelValues(result)
	}
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vram_audit_queue_depth",
		Help: "Audit records accepted but not yet durable.",
	}, func() float64 { return float64(queueDepth()) })
	err := errors.Join(
		m.registry.Register(m.seals),
		m.registry.Register(m.verifies),
		m.registry.Register(m.scrubbed),
		m.registry.Register(m.lastPass),
		m.registry.Register(m.passDuration),
		m.registry.Register(buildInfo),
		m.registry.Register(queue),
		m.registry.Register(m.headPublishedAt),
		m.registry.Register(collectors.NewGoCollector()),
		m.registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
	)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// watch adds the series read from the runtime at each scrape: device memory
// and the age of each shard's last verification.
func (m *metrics) watch(rt runtimeView, now func() time.Time) error {
	return m.registry.Register(newRuntimeCollector(rt, now, m.uuid))
}

// watchWorker adds the worker's state: ready (what /readyz answers) and
// fail-stopped, each 1 or 0.
func (m *metrics) watchWorker(ready, failStopped func() bool) error {
	gauge := func(name, help string, f func() bool) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			if f() {
				return 1
			}
			return 0
		})
	}
	return errors.Join(
		m.registry.Register(gauge("vram_ready", "1 while /readyz answers 200: every shard sealed and freshly verified, nothing failed.", ready)),
		m.registry.Register(gauge("vram_failstopped", "1 once the worker has fail-stopped on an integrity, device or policy failure.", failStopped)),
	)
}

// watchAudit adds the audit log's head, read at each scrape.
func (m *metrics) watchAudit(head func() audit.Head) error {
	return m.registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vram_audit_head_seq",
		Help: "Seq of the audit log's last durable record (its head; GET /audit/head gives its mac). It never goes down while the log is the same.",
	}, func() float64 { return float64(head().Seq) }))
}

// publishHeads publishes log's head as the worker does: an "audit head"
// log line, and the time of it in m.
func publishHeads(log *audit.Log, logger *slog.Logger, m *metrics) *audit.HeadPublisher {
	return audit.PublishHeads(log, audit.HeadConfig{Publish: func(h audit.Head) {
		logger.Info(audit.HeadLogMessage, h.LogAttrs()...)
		m.headPublished(time.Now())
	}})
}

// headPublished records that a head was published at the time at.
func (m *metrics) headPublished(at time.Time) {
	m.headPublishedAt.Set(float64(at.UnixNano()) / 1e9)
}

// scrubPass records a device's completed scrub pass.
func (m *metrics) scrubPass(p supervisor.ScrubPass) {
	if p.Mismatches > 0 {
		return // not a full pass: it stopped at the mismatch
	}
	labels := []string{strconv.Itoa(p.Device), m.uuid(p.Device)}
	m.lastPass.WithLabelValues(labels...).Set(float64(p.Time.UnixNano()) / 1e9)
	m.passDuration.WithLabelValues(labels...).Set(p.Elapsed.Seconds())
}

// uuid is device's UUID, or "" if unknown.
func (m *metrics) uuid(device int) string {
	if device >= 0 && device < len(m.uuids) {
		return m.uuids[device]
	}
	return ""
}

// observe counts what an audit record says happened.
func (m *metrics) observe(r audit.Record) {
	switch r.Event {
	case audit.EventVramSealed:
		m.seals.WithLabelValues(resultSuccess).Inc()
	case audit.EventVramAllocationFailed:
		m.seals.WithLabelValues(resultFailure).Inc()
	case audit.EventSealVerified:
		m.verifies.WithLabelValues(resultSuccess).Inc()
		if size, ok := fieldInt64(r.Fields, "size"); ok && r.Fields["source"] == "scrub" {
			m.scrubbed.Add(float64(size))
		}
	case audit.EventSealVerificationFailed:
		m.verifies.WithLabelValues(resultFailure).Inc()
	}
}

// runtimeCollector reads device memory and shard ages from the runtime at
// each scrape. Once the runtime has stopped it reports nothing.
type runtimeCollector struct {
	rt            runtimeView
	now           func() time.Time
	uuid          func(device int) string
	total         *prometheus.Desc
	used          *prometheus.Desc
	available     *prometheus.Desc
	sinceVerified *prometheus.Desc
}

func newRuntimeCollector(rt runtimeView, now func() time.Time, uuid func(int) string) *runtimeCollector {
	device := []string{"device", "uuid"}
	return &runtimeCollector{
		rt:        rt,
		now:       now,
		uuid:      uuid,
		total:     prometheus.NewDesc("vram_total_bytes", "Device memory.", device, nil),
		used:      prometheus.NewDesc("vram_used_bytes", "Device memory in use, by this worker and anything else.", device, nil),
		available: prometheus.NewDesc("vram_available_bytes", "Device memory this worker may still seal into: free memory less headroom.", device, nil),
		sinceVerified: prometheus.NewDesc("vram_shard_seconds_since_verified",
			"Seconds since every chunk of the shard was last re-hashed and matched; since it was sealed if never.", []string{"shard", "device", "uuid"}, nil),
	}
}

// Describe sends every series' description.
func (c *runtimeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.total
	ch <- c.used
	ch <- c.available
	ch <- c.sinceVerified
}

// Collect reads the runtime once.
func (c *runtimeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	for i := range c.rt.Devices() {
		cp, err := c.rt.Capacity(ctx, i)
		if err != nil {
			return
		}
		labels := []string{strconv.Itoa(i), c.uuid(i)}
		ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(cp.Total), labels...)
		ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(cp.Total-cp.Free), labels...)
		ch <- prometheus.MustNewConstMetric(c.available, prometheus.GaugeValue, float64(model.AvailableBytes(cp.Free, cp.Headroom)), labels...)
	}
	shards, err := c.rt.Shards(ctx)
	if err != nil {
		return
	}
	now := c.now()
	for _, s := range shards {
		since := s.LastVerified
		if since.IsZero() {
			since = s.SealedAt
		}
		ch <- prometheus.MustNewConstMetric(c.sinceVerified, prometheus.GaugeValue, now.Sub(since).Seconds(), s.ID, strconv.Itoa(s.Device), c.uuid(s.Device))
	}
}
