package main

import (
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/internal/units"
	"github.com/vramseal/vramseal/supervisor"
)

// scrubReport makes the background scrub visible: one log line per pass of
// each device, and a summary when the worker stops.
type scrubReport struct {
	logger   *slog.Logger
	interval time.Duration

	mu         sync.Mutex
	passes     int
	bytes      int64
	mismatches int
	// lastVerified is when each shard was last fully verified, on demand or
	// by the scrub, as its SealVerified record says.
	lastVerified map[string]time.Time
}

// newScrubReport follows a worker that scrubs every interval (0: never).
func newScrubReport(logger *slog.Logger, interval time.Duration) *scrubReport {
	return &scrubReport{logger: logger, interval: interval, lastVerified: map[string]time.Time{}}
}

// pass logs one completed pass; it is the runtime's OnScrubPass.
func (s *scrubReport) pass(p supervisor.ScrubPass) {
	s.mu.Lock()
	s.passes++
	s.bytes += p.Bytes
	s.mismatches += p.Mismatches
	s.mu.Unlock()
	if p.Mismatches > 0 {
		s.logger.Warn("scrub pass found a mismatch", "device", p.Device, "mismatches", p.Mismatches, "shards_intact", p.Shards,
			"elapsed", p.Elapsed.Round(time.Millisecond).String())
		return
	}
	s.logger.Info("scrub pass", "device", p.Device, "shards", p.Shards, "bytes", formatSize(p.Bytes),
		"elapsed", p.Elapsed.Round(time.Millisecond).String(), "rate", units.Rate(p.Bytes, p.Elapsed), "next_pass_in", s.interval.String())
}

// observe notes each shard's full verifications in the audit trail.
func (s *scrubReport) observe(rec audit.Record) {
	if rec.Event != audit.EventSealVerified {
		return
	}
	id, ok := rec.Fields["shard_id"].(string)
	if !ok {
		return
	}
	now := time.Now() // the record is durable: the shard matched just now
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastVerified[id] = now
}

// summary logs what the scrub did over the whole run and when each shard
// was last fully verified.
func (s *scrubReport) summary() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.interval == 0 {
		s.logger.Info("scrub summary: background scrubbing was off (--verify-interval 0)")
	} else {
		s.logger.Info("scrub summary", "passes", s.passes, "bytes_rehashed", formatSize(s.bytes), "mismatches", s.mismatches)
	}
	for _, id := range slices.Sorted(maps.Keys(s.lastVerified)) {
		at := s.lastVerified[id]
		s.logger.Info("shard last fully verified", "shard", id, "at", at.Format(time.RFC3339Nano), "ago", time.Since(at).Round(time.Millisecond).String())
	}
}
