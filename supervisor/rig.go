package supervisor

import (
	"context"
	"errors"
	"fmt"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/sealer"
)

// rigToken is the token a Rig derives its key from when RigConfig gives
// none. A Rig is for tests only: never use this token for real weights.
const rigToken = "vramseal-rig-token-for-tests-only"

// RigConfig configures a Rig. Zero values take the documented defaults.
type RigConfig struct {
	// Capacities is the memory, in bytes, of each simulated GPU the runtime
	// gets, by device index; empty means one GPU of 64 MiB.
	Capacities []int64
	// Name, if set, names device i "Name-i" in its Properties.
	Name string
	// Seed makes device i's UUID and random flips deterministic (seed
	// Seed+i+1).
	Seed int64
	// Prefault faults each Sim's memory in before the runtime starts (see
	// cuda.SimConfig.Prefault), so that timings do not pay the host's first
	// touch of each page.
	Prefault bool
	// Shareable makes each Sim's allocations shareable with other
	// processes (cuda.SimConfig.Shareable), as the lease server needs.
	Shareable bool
	// Wrap, if set, puts device i behind another Device, such as one that
	// injects faults; the runtime gets what it returns.
	Wrap func(i int, sim *cuda.Sim) cuda.Device
	// Config is the runtime's configuration. Key, WorkerID and Audit
	// default to a test key, "rig" and a fresh audit.Memory, and Devices to
	// the rig's simulated GPUs. A rig scrubs in the background only when
	// VerifyInterval is set (NoScrub otherwise), so that a test decides
	// whether passes run. Devices given here (a Sim the test made
	// first, a real GPU) are the runtime's as they are: the rig then makes no
	// Sims, and Capacities, Name, Seed, Prefault, Shareable and Wrap do not apply.
	Config Config
}

// Rig is a runtime over simulated GPUs, for tests, stress runs and
// benchmarks only, as raft's MakeCluster is: it builds what every one of
// them would otherwise build by hand, and keeps the Sims at hand for fault
// injection and inspection.
type Rig struct {
	*Runtime
	// Sims are the simulated GPUs, by device index.
	Sims []*cuda.Sim
	// Audit is the audit sink the runtime records to, when RigConfig left
	// it to the rig; nil otherwise.
	Audit *audit.Memory
	// Key signs the runtime's shard records.
	Key *sealer.Key
}

// MakeRig starts a runtime over fresh simulated GPUs, or over
// rc.Config.Devices. Stop the runtime when done; it closes the devices.
//
// For n devices of c bytes each: RigConfig{Capacities: slices.Repeat([]int64{c}, n)}.
func MakeRig(ctx context.Context, rc RigConfig) (*Rig, error) {
	if len(rc.Capacities) == 0 {
		rc.Capacities = []int64{64 << 20}
	}
	cfg := rc.Config
	rig := &Rig{}
	if cfg.WorkerID == "" {
		cfg.WorkerID = "rig"
	}
	if cfg.Key == nil {
		key, err := sealer.DeriveKey([]byte(rigToken), cfg.WorkerID)
		if err != nil {
			return nil, fmt.Errorf("rig: %w", err)
		}
		cfg.Key = key
	}
	rig.Key = cfg.Key
	if cfg.VerifyInterval == 0 {
		cfg.NoScrub = true
	}
	if cfg.Audit == nil {
		rig.Audit = audit.NewMemory()
		cfg.Audit = rig.Audit
	}
	if len(cfg.Devices) > 0 {
		rc.Capacities = nil // the runtime gets the devices given, and no Sims
	}
	for i, capacity := range rc.Capacities {
		sc := cuda.SimConfig{Capacity: capacity, Seed: rc.Seed + int64(i) + 1, Prefault: rc.Prefault, Shareable: rc.Shareable}
		if rc.Name != "" {
			sc.Name = fmt.Sprintf("%s-%d", rc.Name, i)
		}
		sim, err := cuda.NewSim(sc)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("rig: %w", err), closeDevices(cfg.Devices))
		}
		rig.Sims = append(rig.Sims, sim)
		var dev cuda.Device = sim
		if rc.Wrap != nil {
			dev = rc.Wrap(i, sim)
		}
		cfg.Devices = append(cfg.Devices, dev)
	}
	rt, err := Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	rig.Runtime = rt
	return rig, nil
}
