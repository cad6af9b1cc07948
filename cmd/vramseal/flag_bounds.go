package main

import (
	"log/slog"
	"time"

	"github.com/vramseal/vramseal/internal/units"
)

// The bounds on run's flags. Each stops a value that looks like a typo or
// an attack from turning into a full disk, a starved GPU or a start that
// never ends; each refusal says why in one line and exits 2.
const (
	// minVerifyInterval: every pass writes one audit record per shard;
	// --verify-interval 1ns wrote 23 GB of audit log an hour over 40 shards
	// and kept the devices busy re-reading themselves.
	minVerifyInterval = 100 * time.Millisecond
	// minContentionInterval: each look asks NVML for every process on every
	// GPU; faster than this the looks run back to back.
	minContentionInterval = 10 * time.Millisecond
	// maxSimDevices: more than any one host has; --sim-devices 200000 ran
	// for minutes without starting.
	maxSimDevices = 64
	// minSimVRAM and maxSimVRAM: a device smaller than a megabyte holds no
	// useful shard, and one larger than a terabyte is larger than any GPU.
	minSimVRAM = 1 << 20
	maxSimVRAM = 1 << 40
	// minScrubRate: slower, one pass over a large model would take days and
	// readiness (three passes) would never come; maxScrubRate: faster than
	// any memory reads, so it means "unlimited", which says so.
	minScrubRate = 1 << 20
	maxScrubRate = 10 << 40
	// maxHeadroom: more than any GPU's memory, so no shard could be placed.
	maxHeadroom = 1 << 40
)

// Audit volume the scrub may imply before run warns: a few MB a minute is
// a busy worker; more fills a disk within days.
const (
	// verifyRecordBytes is about what one SealVerified line takes.
	verifyRecordBytes = 350
	// auditWarnBytesPerMinute is where the warning starts.
	auditWarnBytesPerMinute = 4 << 20
)

// checkBounds refuses the simulated-device flags outside their bounds.
func (f *backendFlags) checkBounds() error {
	switch {
	case f.simDevices > maxSimDevices:
		return usageErrorf("--sim-devices %d is more than %d, more GPUs than any one host has; use e.g. --sim-devices 4", f.simDevices, maxSimDevices)
	case f.simVRAM.bytes < minSimVRAM:
		return usageErrorf("--sim-vram %s is less than %s, too small for a useful shard; use e.g. --sim-vram 2GiB", f.simVRAM.String(), formatSize(minSimVRAM))
	case f.simVRAM.bytes > maxSimVRAM:
		return usageErrorf("--sim-vram %s is more than %s, larger than any GPU; use e.g. --sim-vram 80GiB", f.simVRAM.String(), formatSize(maxSimVRAM))
	}
	return nil
}

// checkBounds refuses run's flags outside their bounds.
func (o *runOptions) checkBounds() error {
	rate := o.scrubRate.bytesPerSecond
	switch {
	case o.verifyInterval > 0 && o.verifyInterval < minVerifyInterval:
		return usageErrorf("--verify-interval %s is below %s: every pass writes an audit record per shard, so faster passes fill the disk and take the GPUs from inference; use e.g. 30s, or 0 to turn scrubbing off",
			o.verifyInterval, minVerifyInterval)
	case o.contentionInterval > 0 && o.contentionInterval < minContentionInterval:
		return usageErrorf("--contention-interval %s is below %s: each look asks NVML about every process on every GPU; use e.g. 5s", o.contentionInterval, minContentionInterval)
	case rate > 0 && rate < minScrubRate:
		return usageErrorf("--scrub-rate %s is below %s/s: a pass over a large model would take days and the worker would never turn ready; use e.g. 1GiB/s, or unlimited", o.scrubRate.String(), formatSize(minScrubRate))
	case rate > maxScrubRate:
		return usageErrorf("--scrub-rate %s is faster than any memory reads; say --scrub-rate unlimited", o.scrubRate.String())
	case o.headroom.bytes > maxHeadroom:
		return usageErrorf("--headroom %s is more than %s, more than any GPU's memory, so no shard could be placed; use e.g. --headroom 1GiB", o.headroom.String(), formatSize(maxHeadroom))
	}
	return nil
}

// warnAuditVolume warns when scrubbing shards every --verify-interval
// implies more than a few MB of audit log a minute.
func (o *runOptions) warnAuditVolume(shards int, logger *slog.Logger) {
	if o.verifyInterval == 0 {
		return
	}
	perMinute := int64(float64(shards) * verifyRecordBytes * float64(time.Minute) / float64(o.verifyInterval))
	if perMinute > auditWarnBytesPerMinute {
		logger.Warn("scrubbing this often fills the audit log: raise --verify-interval to keep the disk from filling",
			"verify_interval", o.verifyInterval, "shards", shards,
			"audit_per_minute", units.Bytes(perMinute), "audit_per_day", units.Bytes(perMinute*60*24))
	}
}
