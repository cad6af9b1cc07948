package supervisor

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// Defaults for the zero values of Config.
const (
	// DefaultChunkSize is the chunk size when Config.ChunkSize is zero.
	DefaultChunkSize = sealer.DefaultChunkSize
	// DefaultVerifyInterval is the pause between background scrub passes
	// when Config.VerifyInterval is zero: the CLI's default too.
	DefaultVerifyInterval = 30 * time.Second
	// DefaultReadRetries is how often a failed read is retried when
	// Config.ReadRetries is zero.
	DefaultReadRetries = 3
	// VerifierMaxRestarts and VerifierRestartWindow bound how often a
	// panicking verifier is restarted before the worker fail-stops.
	VerifierMaxRestarts   = 3
	VerifierRestartWindow = time.Minute
)

// Config configures a Runtime. Zero values take the documented defaults.
type Config struct {
	// Devices are the GPUs to seal onto, by index. Start takes ownership of
	// them (so does Open): the runtime alone uses them, and closes them when
	// it stops, or when Start fails.
	Devices []cuda.Device
	// Key signs shard records. Required by Start; Open derives it.
	Key *Key
	// WorkerID names this worker in audit records. Required.
	WorkerID string
	// ChunkSize is the unit of copying and hashing: a power of two from
	// 64 KiB to 64 MiB. Zero means 4 MiB.
	ChunkSize int64
	// VerifyInterval is the pause between background scrub passes, each of
	// which re-hashes every shard on a device. Zero means
	// DefaultVerifyInterval (30 s).
	VerifyInterval time.Duration
	// NoScrub turns background scrubbing off: shards are then re-hashed
	// only by Verify and Acquire with Verified; VerifyInterval and
	// ScrubRate do not apply.
	NoScrub bool
	// ScrubRate bounds background scrubbing, in bytes per second per
	// device. Zero means unlimited.
	ScrubRate int64
	// MaxModelSize is the largest shard accepted, in bytes. Zero means no
	// limit beyond device memory.
	MaxModelSize int64
	// Headroom is the memory, in bytes, kept free on every device.
	Headroom int64
	// ReadRetries is how often a failed device read is retried before it
	// counts as a device fault. Zero means 3.
	ReadRetries int
	// Audit receives a durable record of every operation. Required by
	// Start; Open opens its own. The caller keeps it: the runtime never
	// closes a sink it was given, so close it (audit.Log.Close) after Stop
	// returns. A log Open opened is closed by the runtime once it stops.
	Audit audit.Sink
	// Logger receives log lines. Nil discards them.
	Logger *slog.Logger
	// Now tells the time. Nil means time.Now.
	Now func() time.Time
	// OnScrubPass, if set, is called after each background scrub pass of a
	// device that re-hashed all its shards or found a mismatch, from that
	// device's verifier: it must return quickly and must not call the
	// Runtime.
	OnScrubPass func(ScrubPass)
	// Backend names the kind of devices, such as "sim" or "cuda", for the
	// WorkerStarted record ("backend"): audit verify trusts a token kept
	// beside the log only for a log of simulated devices. Empty leaves it
	// out.
	Backend string

	// owned is what Open made for the runtime (its keys and audit log),
	// closed once it has stopped; nil after Start.
	owned *ownedByRuntime
	// hooks are test hooks, set only by this package's tests.
	hooks testHooks
}

// testHooks let tests make actors panic where production code never does.
type testHooks struct {
	gpuMessage      func(device int, msg any)
	acquireLeased   func(device int)
	beforeScrubPass func(device int)
	// staged runs in a seal's read as soon as it has taken a staging buffer.
	staged func()
}

// withDefaults checks cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	bad := func(format string, args ...any) (Config, error) {
		return cfg, fmt.Errorf("%w: %s", messages.ErrConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case len(cfg.Devices) == 0:
		return bad("no devices")
	case cfg.Key == nil:
		return bad("no key")
	case cfg.Audit == nil:
		return bad("no audit sink")
	case cfg.WorkerID == "":
		return bad("no worker ID")
	case cfg.VerifyInterval < 0:
		return bad("verify interval %v is negative", cfg.VerifyInterval)
	case cfg.ScrubRate < 0:
		return bad("scrub rate %d is negative", cfg.ScrubRate)
	case cfg.MaxModelSize < 0:
		return bad("max model size %d is negative", cfg.MaxModelSize)
	case cfg.Headroom < 0:
		return bad("headroom %d is negative", cfg.Headroom)
	case cfg.ReadRetries < 0:
		return bad("read retries %d is negative", cfg.ReadRetries)
	}
	for i, d := range cfg.Devices {
		if d == nil {
			return bad("device %d is nil", i)
		}
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if err := sealer.ValidateChunkSize(cfg.ChunkSize); err != nil {
		return cfg, fmt.Errorf("%w: %w", messages.ErrConfig, err)
	}
	if cfg.VerifyInterval == 0 && !cfg.NoScrub {
		cfg.VerifyInterval = DefaultVerifyInterval
	}
	if cfg.ReadRetries == 0 {
		cfg.ReadRetries = DefaultReadRetries
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg, nil
}
