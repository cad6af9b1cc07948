package main

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/vramseal/vramseal/internal/units"
	"github.com/vramseal/vramseal/model"
)

// progressThrottle bounds how often a progress bar redraws.
const progressThrottle = 100 * time.Millisecond

// progressLogInterval is how often a progress line is logged while a large
// shard seals and stderr is not a terminal.
const progressLogInterval = 10 * time.Second

// progress shows how sealing goes: on a terminal a bar per shard (bytes,
// rate, time left), otherwise log lines: one as each shard starts, and one
// every logEvery while it seals.
type progress struct {
	terminal bool
	out      io.Writer
	logger   *slog.Logger
	logEvery time.Duration
}

// track wraps src's data so that reading it advances the shard's bar; it is
// model.SealOptions.Track. The returned function ends the bar; call it once
// the seal has ended.
func (p *progress) track(src *model.Source, device int, data io.Reader) (io.Reader, func()) {
	if !p.terminal {
		p.logger.Info("sealing", "shard", src.ID, "source", src.Name, "device", device, "size", src.Size)
		now := time.Now()
		return &loggingReader{r: data, id: src.ID, size: src.Size, logger: p.logger, every: p.logEvery, start: now, last: now}, func() {}
	}
	bar := progressbar.NewOptions64(src.Size,
		progressbar.OptionSetWriter(p.out),
		progressbar.OptionSetDescription(fmt.Sprintf("sealing %s on device %d", src.ID, device)),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(progressThrottle),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.out) }),
	)
	return io.TeeReader(data, bar), func() {
		if !bar.IsFinished() {
			bar.Exit() // ends the line, through OptionOnCompletion
		}
	}
}

// loggingReader logs how far a shard's seal has got, every so often.
type loggingReader struct {
	r           io.Reader
	id          string
	size, read  int64
	logger      *slog.Logger
	every       time.Duration
	start, last time.Time
}

// Read reads from the shard's data and logs progress when it is time to.
func (l *loggingReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.read += int64(n)
	now := time.Now()
	if n > 0 && l.read < l.size && now.Sub(l.last) >= l.every {
		l.last = now
		elapsed := now.Sub(l.start)
		attrs := []any{"shard", l.id, "percent", 100 * l.read / l.size, "bytes", l.read, "rate", units.Rate(l.read, elapsed)}
		if elapsed > 0 {
			left := time.Duration(float64(l.size-l.read) / float64(l.read) * float64(elapsed))
			attrs = append(attrs, "eta", left.Round(time.Second))
		}
		l.logger.Info("sealing progress", attrs...)
	}
	return n, err
}
