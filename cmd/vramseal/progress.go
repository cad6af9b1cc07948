package main

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progressThrottle bounds how often a progress bar redraws.
const progressThrottle = 100 * time.Millisecond

// progress shows how sealing goes: on a terminal a bar per shard (bytes,
// rate, time left), otherwise a log line as each shard starts.
type progress struct {
	terminal bool
	out      io.Writer
	logger   *slog.Logger
}

// track wraps src's data so that reading it advances the shard's bar. The
// returned function ends the bar; call it once the seal has ended.
func (p *progress) track(src *modelSource, device int) (io.Reader, func()) {
	if !p.terminal {
		p.logger.Info("sealing", "shard", src.id, "source", src.name, "device", device, "size", src.size)
		return src.data, func() {}
	}
	bar := progressbar.NewOptions64(src.size,
		progressbar.OptionSetWriter(p.out),
		progressbar.OptionSetDescription(fmt.Sprintf("sealing %s on device %d", src.id, device)),
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
	return io.TeeReader(src.data, bar), func() {
		if !bar.IsFinished() {
			bar.Exit() // ends the line, through OptionOnCompletion
		}
	}
}
