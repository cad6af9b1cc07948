package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vramseal/vramseal/stress"
)

func newBenchCommand(a *app) *cobra.Command {
	var (
		auditDir string
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the design's speed targets on this machine",
		Long:  benchLong(),
		Example: `  # The table
  vramseal bench

  # JSON, with the durable audit log on the disk a worker would use
  vramseal bench --json --audit-dir /var/lib/vramseal`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := stress.BenchConfig{TempDir: auditDir}
			if a.logger.Enabled(cmd.Context(), slog.LevelDebug) {
				cfg.Logger = a.logger
			}
			report, err := stress.Bench(cmd.Context(), cfg)
			if err != nil {
				return withExitCode(exitFailure, fmt.Errorf("bench: %w", err))
			}
			if err := printReport(a, report, asJSON); err != nil {
				return err
			}
			if !report.Pass() {
				return withExitCode(exitFailure, errors.New("bench: a target was missed"))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&auditDir, "audit-dir", "", "directory for the durable audit log measured (default: the system's temporary directory)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON instead of a table")
	return cmd
}

// textReport is a report that prints itself as tables: the bench's and the
// stress run's.
type textReport interface {
	WriteText(w io.Writer) error
}

// printReport writes the report as tables or as indented JSON.
func printReport(a *app, r textReport, asJSON bool) error {
	if !asJSON {
		return r.WriteText(a.stdout)
	}
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// benchLong is bench's --help text, its targets read from stress, which
// measures them.
func benchLong() string {
	var b strings.Builder
	b.WriteString(`bench measures, in one run of about half a minute on simulated GPUs, each
target of the design against its reference on this same machine, and prints
the measured value, the reference, their ratio, the target and pass or fail:

`)
	for _, t := range stress.BenchTargets() {
		fmt.Fprintf(&b, "  %-32s %s\n      reference: %s\n", t.Name, t.Want, t.Reference)
	}
	b.WriteString(`
The scrub and Verify notes also give their old reference, cores x
cache-hot SHA-256, which no device that copies its data out can reach.
Each note says how the numbers were taken. Other load on the machine skews
them; run it on a quiet one.

Exit codes: 0 every target met; 1 a target missed, or the measurement failed;
2 bad usage.`)
	return b.String()
}
