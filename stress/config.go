package stress

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// Sizes used by the defaults.
const (
	kib = int64(1) << 10
	mib = int64(1) << 20
)

// Defaults for the zero values of Config.
const (
	DefaultDevices          = 4
	DefaultSeals            = 10000
	DefaultConcurrency      = 1000
	DefaultDeviceCapacity   = 1 << 30
	DefaultChunkSize        = 64 * kib
	DefaultVerifyInterval   = 20 * time.Millisecond
	DefaultScrubRate        = 64 * mib
	DefaultHeldPerCaller    = 2
	DefaultDetectionTimeout = 10 * time.Second
	DefaultCheckInterval    = 5 * time.Millisecond
)

// SizeClass is one part of the seal size distribution: a share of the seals
// whose sizes are drawn uniformly from Min to Max bytes.
type SizeClass struct {
	Weight   float64
	Min, Max int64
}

// DefaultSizes is mostly small shards of 4 to 64 KiB, one chunk each, and
// some of about 1 MiB, which span many 64 KiB chunks and end in a partial
// one.
func DefaultSizes() []SizeClass {
	return []SizeClass{
		{Weight: 0.95, Min: 4 * kib, Max: 64 * kib},
		{Weight: 0.05, Min: mib - 32*kib, Max: mib + 32*kib},
	}
}

// Config configures Run. Zero values take the defaults above.
type Config struct {
	// Devices is the number of simulated GPUs of each runtime.
	Devices int
	// DeviceCapacity is each simulated GPU's memory in bytes.
	DeviceCapacity int64
	// Seals is the budget of seal attempts over the whole run, restarts
	// included.
	Seals int
	// Concurrency is the number of callers working at once.
	Concurrency int
	// Faults are the injection rates; the zero value injects nothing.
	Faults Faults
	// Seed makes sizes, choices and fault decisions reproducible: each
	// caller and each device draws from its own seeded generator. The
	// interleaving of callers is the scheduler's, so two runs with one seed
	// see the same decisions in each stream, not the same global order.
	Seed int64
	// Sizes is the seal size distribution; nil means DefaultSizes.
	Sizes []SizeClass
	// ChunkSize is the runtime's chunk size; zero means 64 KiB.
	ChunkSize int64
	// VerifyInterval and ScrubRate configure the runtime's background
	// scrub; zero means 20 ms and 64 MiB/s per device.
	VerifyInterval time.Duration
	ScrubRate      int64
	// HeldPerCaller is how many live shards each caller keeps before it
	// releases its oldest.
	HeldPerCaller int
	// DetectionTimeout is how long a flip or a lost device may go
	// undetected before the checker calls it missed.
	DetectionTimeout time.Duration
	// CheckInterval is the pause between continuous accounting checks.
	CheckInterval time.Duration
	// Logger receives the runtime's log lines; nil discards them.
	Logger *slog.Logger

	// hooks plant violations; only this package's tests set them.
	hooks testHooks
}

// testHooks make the harness break an invariant on purpose, so tests can show
// the checker catches it.
type testHooks struct {
	// dropRecord, if it returns true, makes the audit sink acknowledge a
	// record without keeping it.
	dropRecord func(audit.Record) bool
	// skipFree, if it returns true, makes a device acknowledge a Free
	// without freeing; skipFreeAtStop does so for the first Free on device
	// 0 once the harness has asked the runtime to stop.
	skipFree       func(device int) bool
	skipFreeAtStop bool
	// silentFlip flips a bit of the first shard sealed without telling the
	// checker.
	silentFlip bool
	// undoneFlip makes the flip injected into the first runtime flip the
	// same bit back, so no detection can happen.
	undoneFlip bool
	// leakGoroutine starts, in the first runtime, a goroutine that lives
	// until Run returns.
	leakGoroutine bool
	// goroutineDeadline, if set, replaces how long the goroutine check
	// waits for the count to come back.
	goroutineDeadline time.Duration
}

// withDefaults checks cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	bad := func(format string, args ...any) (Config, error) {
		return cfg, fmt.Errorf("%w: stress: %s", messages.ErrConfig, fmt.Sprintf(format, args...))
	}
	if cfg.Devices < 0 || cfg.Seals < 0 || cfg.Concurrency < 0 || cfg.DeviceCapacity < 0 ||
		cfg.ChunkSize < 0 || cfg.VerifyInterval < 0 || cfg.ScrubRate < 0 || cfg.HeldPerCaller < 0 ||
		cfg.DetectionTimeout < 0 || cfg.CheckInterval < 0 {
		return bad("negative setting in %+v", cfg)
	}
	for _, kind := range faultKinds {
		if r := *cfg.Faults.rate(kind); !(r >= 0 && r <= 1) {
			return bad("%s rate %v is not a probability", kind, r)
		}
	}
	cfg.Devices = orDefault(cfg.Devices, DefaultDevices)
	cfg.Seals = orDefault(cfg.Seals, DefaultSeals)
	cfg.Concurrency = orDefault(cfg.Concurrency, DefaultConcurrency)
	cfg.DeviceCapacity = orDefault(cfg.DeviceCapacity, DefaultDeviceCapacity)
	cfg.ChunkSize = orDefault(cfg.ChunkSize, DefaultChunkSize)
	cfg.VerifyInterval = orDefault(cfg.VerifyInterval, DefaultVerifyInterval)
	cfg.ScrubRate = orDefault(cfg.ScrubRate, DefaultScrubRate)
	cfg.HeldPerCaller = orDefault(cfg.HeldPerCaller, DefaultHeldPerCaller)
	cfg.DetectionTimeout = orDefault(cfg.DetectionTimeout, DefaultDetectionTimeout)
	cfg.CheckInterval = orDefault(cfg.CheckInterval, DefaultCheckInterval)
	if cfg.Sizes == nil {
		cfg.Sizes = DefaultSizes()
	}
	if err := sealer.ValidateChunkSize(cfg.ChunkSize); err != nil {
		return cfg, fmt.Errorf("%w: stress: %w", messages.ErrConfig, err)
	}
	var total float64
	for _, c := range cfg.Sizes {
		if c.Weight <= 0 || c.Min < int64(maxHeaderLen) || c.Max < c.Min || c.Max > cfg.DeviceCapacity {
			return bad("size class %+v: want a positive weight and %d <= min <= max <= device capacity", c, maxHeaderLen)
		}
		total += c.Weight
	}
	if total == 0 {
		return bad("no size classes")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// drawSize draws a seal size from the distribution.
func (cfg Config) drawSize(rng *rand.Rand) int64 {
	var total float64
	for _, c := range cfg.Sizes {
		total += c.Weight
	}
	x := rng.Float64() * total
	for _, c := range cfg.Sizes {
		if x < c.Weight {
			return c.Min + rng.Int64N(c.Max-c.Min+1)
		}
		x -= c.Weight
	}
	last := cfg.Sizes[len(cfg.Sizes)-1]
	return last.Min + rng.Int64N(last.Max-last.Min+1)
}
