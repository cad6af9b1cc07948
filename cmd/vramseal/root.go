package main

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vramseal/vramseal/gpuhealth"
)

// app is what every command shares: where output goes, the logger the
// global flags ask for, and whether a command has begun to run.
type app struct {
	stdout, stderr   io.Writer
	stderrIsTerminal bool
	logFlags         logFlags
	logger           *slog.Logger
	// gpus reaches the real GPUs: the NVIDIA driver, or a test's stand-in.
	gpus gpuhealth.Source
	// started is set once the command line has parsed and a command runs;
	// errors before that are usage errors.
	started bool
}

// execute runs one command line; ctx's end stops a worker gracefully.
func (a *app) execute(ctx context.Context, args []string) error {
	root := newRootCommand(a)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// newRootCommand builds the vramseal command and adds every subcommand.
// A new subcommand is added here, in the one list below.
func newRootCommand(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "vramseal",
		Short: "Keep model shards in GPU memory and prove nobody changed them",
		Long: `vramseal seals ML model shards into GPU memory (or simulated GPUs), signs a
record of each, re-hashes them in the background, and fail-stops the worker
the moment a byte differs. Every operation is written to a hash-chained audit
log that "vramseal audit verify" checks.

Exit codes: 0 success (a worker stopped by SIGINT/SIGTERM or --duration),
1 other failure, 2 bad usage or configuration, 3 fail-stop on an integrity,
device or VRAM policy failure, 4 not the published model (run), 5 another
token or worker ID than wrote the log (audit verify). Each command's --help
says which it uses.`,
		Example: `  # Seal a demo model onto simulated GPUs for ten seconds, then stop cleanly
  vramseal run --duration 10s --verify-interval 2s

  # Check its audit log
  vramseal audit verify vramseal-audit.jsonl

  # List the GPUs vramseal can see
  vramseal devices`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			logger, err := a.logFlags.newLogger(a.stderr)
			if err != nil {
				return err
			}
			a.logger = logger
			a.started = true
			return nil
		},
	}
	b := readBuildInfo()
	root.Version = b.version
	root.SetVersionTemplate(strings.ReplaceAll(b.text(), "{{", "{{`{{`}}"))
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return withExitCode(exitUsage, err)
	})
	a.logFlags.register(root)
	root.AddCommand(
		newRunCommand(a),
		newDevicesCommand(a),
		newShareCommand(a),
		newAuditCommand(a),
		newVersionCommand(a),
		newStressCommand(a), newBenchCommand(a),
	)
	return root
}
