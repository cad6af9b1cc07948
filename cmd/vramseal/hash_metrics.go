package main

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/cuda/driver"
)

// hashCounter is a device that counts its own hashes: a GPU that hashes on
// the device (driver.Device).
type hashCounter interface {
	HashStats() driver.HashStats
}

// hashCollector reads each GPU's hash counters at each scrape: kernel
// launches, chunks hashed on the device, and hashes that fell back to the
// host for want of device memory.
type hashCollector struct {
	devices       map[int]hashCounter
	uuid          func(device int) string
	launches      *prometheus.Desc
	chunks        *prometheus.Desc
	hostFallbacks *prometheus.Desc
}

// watchHashes adds the hash counters of every device that keeps them; on
// devices that keep none (simulated ones) it adds nothing.
func (m *metrics) watchHashes(devices []cuda.Device) error {
	counters := map[int]hashCounter{}
	for i, d := range devices {
		if c, ok := d.(hashCounter); ok {
			counters[i] = c
		}
	}
	if len(counters) == 0 {
		return nil
	}
	labels := []string{"device", "uuid"}
	return m.registry.Register(&hashCollector{
		devices:  counters,
		uuid:     m.uuid,
		launches: prometheus.NewDesc("vram_device_hash_launches_total", "SHA-256 kernel launches on the device.", labels, nil),
		chunks:   prometheus.NewDesc("vram_device_hash_chunks_total", "Chunks hashed on the device by those launches.", labels, nil),
		hostFallbacks: prometheus.NewDesc("vram_device_hash_host_fallbacks_total",
			"Hashes copied out to the host although the kernel loaded, because device memory was too full for a digest buffer.", labels, nil),
	})
}

// Describe sends every series' description.
func (c *hashCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.launches
	ch <- c.chunks
	ch <- c.hostFallbacks
}

// Collect reads each device's counters once.
func (c *hashCollector) Collect(ch chan<- prometheus.Metric) {
	for i, d := range c.devices {
		s := d.HashStats()
		labels := []string{strconv.Itoa(i), c.uuid(i)}
		ch <- prometheus.MustNewConstMetric(c.launches, prometheus.CounterValue, float64(s.Launches), labels...)
		ch <- prometheus.MustNewConstMetric(c.chunks, prometheus.CounterValue, float64(s.Chunks), labels...)
		ch <- prometheus.MustNewConstMetric(c.hostFallbacks, prometheus.CounterValue, float64(s.HostFallbacks), labels...)
	}
}
