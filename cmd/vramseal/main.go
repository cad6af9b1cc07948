// Command vramseal keeps ML model shards in GPU memory and proves nobody
// changed them: it seals each shard, re-hashes it in the background, and
// fail-stops the moment a byte differs.
//
// Run "vramseal --help" for the commands, and "vramseal run --help" for the
// worker's flags and examples.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/vramseal/vramseal/gpuhealth"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, term.IsTerminal(int(os.Stderr.Fd()))))
}

// run executes one command line and returns the process's exit code. SIGINT
// and SIGTERM cancel the command's context, which stops a worker gracefully;
// a second one ends the process at once (notifySignals: the one exit
// besides main's). An error is printed to stderr as one line, in words for
// the user (see userMessage).
func run(args []string, stdout, stderr io.Writer, stderrIsTerminal bool) int {
	ctx, stop := notifySignals(context.Background(), exitAtOnce(stderr))
	defer stop()
	a := &app{stdout: stdout, stderr: stderr, stderrIsTerminal: stderrIsTerminal, gpus: gpuhealth.Driver()}
	err := a.execute(ctx, args)
	if err != nil {
		fmt.Fprintf(stderr, "vramseal: %s\n", userMessage(err))
	}
	return exitCodeOf(err, a.started)
}
