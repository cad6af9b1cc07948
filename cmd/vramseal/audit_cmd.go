package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/safefile"
)

func newAuditCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Work with audit logs",
		Example: `  # Check a worker's audit log with the worker's token
  vramseal audit verify vramseal-audit.jsonl --token-file vramseal.token`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return usageErrorf("unknown command %q for \"vramseal audit\"; use: vramseal audit verify FILE", args[0])
		},
	}
	cmd.AddCommand(newAuditVerifyCommand(a))
	return cmd
}

func newAuditVerifyCommand(a *app) *cobra.Command {
	var tokenFile, workerID string
	cmd := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check that an audit log is intact: nothing edited, removed, reordered or inserted",
		Long: `verify checks every line of a worker's audit log against the hash chain keyed
by the worker's token: each record must be there, in order, unchanged.

The token is read as for "vramseal run": --token-file, else
$VRAMSEAL_TOKEN_FILE, else $CREDENTIALS_DIRECTORY/vramseal-token. The worker ID
defaults to the one the log's first line names.

Records removed from the end of a log leave it intact: compare the record count
and head it prints with a copy kept elsewhere to catch that.

Exit codes: 0 intact; 1 tampered with (the first bad line and why); 2 bad
usage, or the log or token could not be read.`,
		Example: `  vramseal audit verify vramseal-audit.jsonl --token-file vramseal.token`,
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return verifyAuditLog(a, args[0], tokenFile, workerID)
		},
	}
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the token of the worker that wrote the log (else $"+tokenFileEnv+")")
	cmd.Flags().StringVar(&workerID, "worker-id", "", "worker that wrote the log (default: the worker its first line names)")
	return cmd
}

// verifyAuditLog checks the log at path and prints the outcome.
func verifyAuditLog(a *app, path, tokenFile, workerID string) error {
	tokenAt := tokenPath(tokenFile)
	if _, err := os.Lstat(simTokenPath(path)); tokenAt == "" && err == nil {
		tokenAt = simTokenPath(path) // kept by a token-less run on simulated GPUs
	}
	if tokenAt == "" {
		return usageErrorf("no token to check %s with; pass --token-file PATH of the worker that wrote it", path)
	}
	f, _, err := safefile.Open(path, safefile.Options{})
	if errors.Is(err, fs.ErrNotExist) {
		return usageErrorf("audit log %s does not exist; check the path (vramseal run writes ./vramseal-audit.jsonl by default)", path)
	}
	if errors.Is(err, safefile.ErrNotRegular) {
		return usageErrorf("audit log %s is not a regular file; pass the log file itself, or a copy of it", path)
	}
	if err != nil {
		return usageErrorf("audit log %s cannot be read: %v", path, rootCause(err))
	}
	defer f.Close()
	if workerID == "" {
		workerID, err = firstWorkerID(f)
		if err != nil {
			return usageErrorf("audit log %s cannot be read: %v", path, err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return usageErrorf("audit log %s cannot be read: %v", path, rootCause(err))
		}
	}
	token, err := readToken(tokenAt)
	if err != nil {
		return err
	}
	key, err := audit.DeriveKey(token, workerID)
	clear(token)
	if err != nil {
		return withExitCode(exitUsage, err)
	}
	defer key.Zero()
	report, err := audit.Verify(f, key)
	switch {
	case errors.Is(err, messages.ErrIntegrityViolation):
		hint := ""
		if report.FirstBad == 1 && report.Reason == audit.ReasonEdited {
			hint = " (or the token or --worker-id is not the one that wrote it)"
		}
		return withExitCode(exitFailure, fmt.Errorf("audit log %s is NOT intact: line %d: %s%s: %s; %d records before it are intact",
			path, report.FirstBad, report.Reason, hint, report.Detail, report.Records))
	case err != nil:
		return usageErrorf("audit log %s cannot be checked: %v", path, err)
	}
	_, err = fmt.Fprintf(a.stdout, "audit log %s is intact: %d records by worker %q, head %s\n", path, report.Records, report.WorkerID, report.Head)
	return err
}

// firstWorkerID reads the worker ID from the first line of a log, or
// returns the host's default worker ID when the log is empty or its first
// line names none; Verify then says what is wrong with that line.
func firstWorkerID(r io.Reader) (string, error) {
	line, err := bufio.NewReaderSize(r, audit.MaxLineBytes).ReadSlice('\n')
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return "", err
	}
	var head struct {
		WorkerID string `json:"worker_id"`
	}
	if json.Unmarshal(line, &head) != nil || head.WorkerID == "" {
		return defaultWorkerID(), nil
	}
	return head.WorkerID, nil
}
