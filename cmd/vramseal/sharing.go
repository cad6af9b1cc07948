package main

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vramseal/vramseal/share"
)

// startSharing starts --serve's lease server over the running runtime and
// adds its series to m.
func (w *worker) startSharing(m *metrics) error {
	o := w.opts.serve
	s, err := share.Listen(share.Config{
		Runtime: w.rt, Listener: w.shareLn, WorkerID: w.opts.workerID,
		AllowUIDs: o.allowUIDs, AllowGIDs: o.allowGIDs, MaxClients: o.maxClients, Logger: w.logger,
	})
	if err != nil {
		return err
	}
	w.shareLn, w.share = nil, s
	w.logger.Info("serving leases", "socket", o.path, "allow_uids", o.allowUIDs, "allow_gids", o.allowGIDs, "max_clients", o.maxClients)
	return m.watchSharing(s.Stats)
}

// watchSharing adds the lease server's series, read at each scrape.
func (m *metrics) watchSharing(stats func() share.Stats) error {
	gauge := func(name, help string, read func(share.Stats) int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(read(stats())) })
	}
	counter := func(name, help string, read func(share.Stats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(read(stats())) })
	}
	return errors.Join(
		m.registry.Register(gauge("vram_share_clients", "Processes connected to the lease server (--serve).",
			func(s share.Stats) int64 { return s.Clients })),
		m.registry.Register(gauge("vram_share_leases", "Leases other processes hold through the lease server.",
			func(s share.Stats) int64 { return s.Leases })),
		m.registry.Register(counter("vram_share_grants_total", "Leases the lease server granted.",
			func(s share.Stats) int64 { return s.Grants })),
		m.registry.Register(counter("vram_share_revocations_total", "Revocations the lease server delivered to clients.",
			func(s share.Stats) int64 { return s.Revocations })),
		m.registry.Register(counter("vram_share_drops_total", "Client connections dropped for not keeping up with what they were sent.",
			func(s share.Stats) int64 { return s.Drops })),
	)
}
