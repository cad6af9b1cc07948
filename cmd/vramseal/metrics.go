package main

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
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
	capacityReader
	Shards(ctx context.Context) ([]messages.ShardStatus, error)
}

// metrics are the worker's Prometheus series, in a registry of their own.
// Operation counts come from the audit records the worker writes (see
// observe); memory and shard ages are read from the runtime at each scrape.
type metrics struct {
	registry *prometheus.Registry
	seals    *prometheus.CounterVec
	verifies *prometheus.CounterVec
	scrubbed prometheus.Counter
}

// newMetrics registers the operation counters, the audit queue gauge and the
// process's own series. queueDepth reports the audit records not yet
// durable. The runtime's series follow once it runs (see watch).
func newMetrics(queueDepth func() int) (*metrics, error) {
	m := &metrics{
		registry: prometheus.NewRegistry(),
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
	}
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
		m.registry.Register(queue),
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
	return m.registry.Register(newRuntimeCollector(rt, now))
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
	total         *prometheus.Desc
	used          *prometheus.Desc
	available     *prometheus.Desc
	sinceVerified *prometheus.Desc
}

func newRuntimeCollector(rt runtimeView, now func() time.Time) *runtimeCollector {
	device := []string{"device"}
	return &runtimeCollector{
		rt:        rt,
		now:       now,
		total:     prometheus.NewDesc("vram_total_bytes", "Device memory.", device, nil),
		used:      prometheus.NewDesc("vram_used_bytes", "Device memory in use, by this worker and anything else.", device, nil),
		available: prometheus.NewDesc("vram_available_bytes", "Device memory this worker may still seal into: free memory less headroom.", device, nil),
		sinceVerified: prometheus.NewDesc("vram_shard_seconds_since_verified",
			"Seconds since every chunk of the shard was last re-hashed and matched; since it was sealed if never.", []string{"shard"}, nil),
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
		label := strconv.Itoa(i)
		ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(cp.Total), label)
		ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(cp.Total-cp.Free), label)
		ch <- prometheus.MustNewConstMetric(c.available, prometheus.GaugeValue, float64(availableBytes(cp.Free, cp.Headroom)), label)
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
		ch <- prometheus.MustNewConstMetric(c.sinceVerified, prometheus.GaugeValue, now.Sub(since).Seconds(), s.ID)
	}
}
