package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/stress"
)

func newStressCommand(a *app) *cobra.Command {
	var (
		cfg    = stress.Config{Devices: stress.DefaultDevices, Seals: stress.DefaultSeals, Concurrency: stress.DefaultConcurrency, Seed: 1}
		faults string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "stress",
		Short: "Drive simulated GPUs hard, with injected faults, and check every invariant",
		Long: `stress starts a runtime over simulated GPUs and lets many callers seal, verify
and release shards of mixed sizes (mostly 4-64 KiB, some about 1 MiB, in 64 KiB
chunks) at once, while it injects faults at the rates --faults gives:

  alloc    a device allocation fails; the seal must fail, retriably
  copy     a copy to the device stops part-way; the seal must fail and free
  read     a device read fails (fewer times in a row than the runtime
           retries); the runtime must retry, never fail-stop
  bitflip  one bit of a live shard flips; the runtime must fail-stop and
           name the shard and its corrupted chunk
  lost     a device is lost; the runtime must fail-stop naming it

bitflip and lost, the fatal two, start once a first shard has been released,
so that every run exercises release, however high their rates.

A checker holds the invariants throughout and after every stop: exact
accounting, every flip detected, no fail-stop without a flip or loss, an audit
record for every acknowledged operation, no allocation and no goroutine left
behind. After a fail-stop a fresh runtime takes over, as a supervisor would
restart a worker, until the seal budget is spent. The report gives operations
per second and latency by kind, faults injected and detected, flip detection
latency, restarts, violations and the peak heap.

The runtime's own log lines (fail-stops are expected here) go to stderr only
with --log-level debug.

Exit codes: 0 no invariant broken; 1 an invariant broken, or the run could not
finish; 2 bad usage.`,
		Example: `  # The default run: 4 devices, 10000 seals, 1000 callers, default fault rates
  vramseal stress

  # No faults, as JSON
  vramseal stress --faults none --json

  # Chosen rates and seed; kinds left out get rate 0
  vramseal stress --faults alloc=0.01,copy=0.005,read=0.01,bitflip=0.001,lost=0.0002 --seed 7`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := stress.ParseFaults(faults)
			if err != nil {
				return usageErrorf("--faults: %v", err)
			}
			for _, n := range []struct {
				flag  string
				value int
			}{{"--devices", cfg.Devices}, {"--seals", cfg.Seals}, {"--concurrency", cfg.Concurrency}} {
				if n.value < 1 {
					return usageErrorf("%s %d: need at least 1", n.flag, n.value)
				}
			}
			cfg.Faults = f
			if a.logger.Enabled(cmd.Context(), slog.LevelDebug) {
				cfg.Logger = a.logger
			}
			report, err := stress.Run(cmd.Context(), cfg)
			if errors.Is(err, messages.ErrConfig) {
				return withExitCode(exitUsage, err)
			}
			if printErr := printReport(a, report, asJSON); printErr != nil {
				return errors.Join(err, printErr)
			}
			if errors.Is(err, context.Canceled) {
				return withExitCode(exitFailure, fmt.Errorf("stress interrupted: %w", err))
			}
			if err != nil {
				return withExitCode(exitFailure, err)
			}
			if !report.OK() {
				return withExitCode(exitFailure, fmt.Errorf("stress: %d invariant violations", report.Violations))
			}
			return nil
		},
	}
	flags := cmd.Flags()
	flags.IntVar(&cfg.Devices, "devices", cfg.Devices, "simulated GPUs per runtime")
	flags.IntVar(&cfg.Seals, "seals", cfg.Seals, "seal attempts over the whole run, restarts included")
	flags.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "callers working at once")
	flags.StringVar(&faults, "faults", "default", `fault rates: "default" (`+stress.DefaultFaults().String()+`), "none", or kind=rate,...`)
	flags.Int64Var(&cfg.Seed, "seed", cfg.Seed, "seed for sizes, choices and fault decisions")
	flags.BoolVar(&asJSON, "json", false, "print the report as JSON instead of tables")
	return cmd
}
