package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/internal/safefile"
	"github.com/vramseal/vramseal/messages"
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
	var tokenFile, workerID, headsFile string
	var expectHeads []string
	cmd := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check that an audit log is intact, and sum up what it records",
		Long: `verify checks every line of a worker's audit log against the hash chain keyed
by the worker's token: each record must be there, in order, unchanged. Empty
lines at the very end (as an editor leaves them) are ignored. Then it sums the
log up: records, workers, time span, critical events by kind, and how the
worker last stopped (gracefully, or the fail-stop's cause).

The token is read as for "vramseal run": --token-file, else
$VRAMSEAL_TOKEN_FILE, else $CREDENTIALS_DIRECTORY/vramseal-token, else the
token a token-less run on simulated GPUs kept beside the log
(vramseal-audit.jsonl -> vramseal-audit.token), used only for a log whose
WorkerStarted records all say simulated GPUs. It prints which token it used,
and its key fingerprint. The worker ID defaults to the one the log names.

Records removed from the end of a log leave it intact. To catch that, give
the heads the worker published while it ran (its "audit head" log lines, or
what GET /audit/head answered): --expect-head SEQ:MAC, as often as needed,
or --heads FILE with one head a line (log lines as shipped, JSON or text,
/audit/head answers, or SEQ:MAC). The log must still hold each of them: its
record at that seq, with that mac.

Exit codes: 0 intact (critical events are listed, they do not change it),
and it holds every head given; 1 NOT intact: tampered with (the first bad
line and why); 2 bad usage, or the log, token or heads could not be read, the
log is empty, or a head is another worker's; 5 wrong token or worker ID: the
log's key fingerprint or worker is not the one given, so nothing can be said
about tampering until the right one is; 6 intact, but it does not hold a head
given: it was cut before it (truncated) or rewritten from before it
(diverged); the last head it still holds is named.`,
		Example: `  vramseal audit verify vramseal-audit.jsonl --token-file vramseal.token

  # The token from the environment, as "vramseal run" reads it
  VRAMSEAL_TOKEN_FILE=/etc/vramseal/token vramseal audit verify /var/lib/vramseal/vramseal-audit.jsonl

  # Check that the log still holds the heads the worker published
  journalctl -u vramseal -o cat | grep 'audit head' > heads.txt
  vramseal audit verify /var/lib/vramseal/vramseal-audit.jsonl --heads heads.txt`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("audit verify checks one log file, got %d arguments; use: vramseal audit verify FILE [--token-file PATH], e.g. vramseal audit verify %s --token-file vramseal.token",
					len(args), defaultAuditLog())
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			heads, err := expectedHeads(expectHeads, headsFile)
			if err != nil {
				return err
			}
			return verifyAuditLog(a, args[0], tokenFile, workerID, heads)
		},
	}
	cmd.Flags().StringArrayVar(&expectHeads, "expect-head", nil, "a head the worker published, SEQ:MAC (seq, colon, 64 hex digits), that the log must still hold; repeatable")
	cmd.Flags().StringVar(&headsFile, "heads", "", "file of heads the worker published, one a line (its \"audit head\" log lines, /audit/head answers, or SEQ:MAC), that the log must still hold")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the token of the worker that wrote the log (else $"+tokenFileEnv+", else $CREDENTIALS_DIRECTORY/"+credentialName+", else, for a log of simulated GPUs only, the token kept beside it)")
	cmd.Flags().StringVar(&workerID, "worker-id", "", "worker that wrote the log (default: the worker the log names)")
	return cmd
}

// verifyAuditLog checks the log at path and prints the outcome.
func verifyAuditLog(a *app, path, tokenFile, workerID string, heads []shippedHead) error {
	f, info, err := safefile.Open(path, safefile.Options{})
	if errors.Is(err, fs.ErrNotExist) {
		return usageErrorf("audit log %s does not exist; check the path (vramseal run writes %s by default)", path, defaultAuditLog())
	}
	if errors.Is(err, safefile.ErrNotRegular) {
		return usageErrorf("audit log %s is not a regular file; pass the log file itself, or a copy of it", path)
	}
	if err != nil {
		return usageErrorf("audit log %s cannot be read: %v", path, safefile.Cause(err))
	}
	defer f.Close()
	if info.Size() == 0 {
		return usageErrorf("audit log %s is empty: there is no record to verify. A worker's log begins with its WorkerStarted record; if this one held records, they were removed", path)
	}
	summary, err := readSummary(f)
	if err != nil {
		return usageErrorf("audit log %s cannot be read: %v", path, err)
	}
	tokenAt, tokenFrom, err := auditToken(path, tokenFile, summary)
	if err != nil {
		return err
	}
	if workerID == "" {
		if workerID, err = namedWorker(f); err != nil {
			return usageErrorf("audit log %s cannot be read: %v", path, err)
		}
		if workerID == "" {
			return withExitCode(exitFailure, fmt.Errorf("audit log %s is NOT intact: no line of it is an audit record", path))
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
	checkedWith := fmt.Sprintf("%s (%s), key fingerprint %s", tokenAt, tokenFrom, key.Fingerprint())
	if err := headsOfWorker(heads, workerID); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return usageErrorf("audit log %s cannot be read: %v", path, safefile.Cause(err))
	}
	report, held, err := audit.VerifyHeads(f, key, headsOnly(heads))
	switch {
	case errors.Is(err, audit.ErrHeadMismatch):
		return withExitCode(exitHeadMismatch, fmt.Errorf("audit log %s is intact (%d records, head %s) but it is %s: %s; %s; checked with the token %s",
			path, report.Records, report.Head, held.Problem, held.Detail, lastHeld(held), checkedWith))
	case errors.Is(err, messages.ErrIntegrityViolation):
		if wrong := wrongKey(summary, key, tokenAt); wrong != nil {
			return withExitCode(exitWrongKey, fmt.Errorf("audit log %s cannot be checked with this key: %w", path, wrong))
		}
		return withExitCode(exitFailure, fmt.Errorf("audit log %s is NOT intact: line %d: %s: %s; the %d records before it are intact; checked with the token %s",
			path, report.FirstBad, report.Reason, report.Detail, report.Records, checkedWith))
	case err != nil:
		return usageErrorf("audit log %s cannot be checked: %v", path, err)
	}
	return printSummary(a.stdout, path, report, held, summary, checkedWith)
}

// auditToken finds the token to check the log at path with: as "vramseal
// run" finds it (flag, environment, systemd credential), else the token a
// token-less run on simulated GPUs kept beside the log, but only for a log
// whose every WorkerStarted record names the simulated backend. Anyone who
// can write the log's directory can replace both a log and the token beside
// it, so a log of real GPUs is never checked with that token. from says
// where the token came from, for the output.
func auditToken(path, flag string, s audit.Summary) (tokenAt, from string, err error) {
	if tokenAt = tokenPath(flag); tokenAt != "" {
		switch {
		case flag != "":
			from = "--token-file"
		case os.Getenv(tokenFileEnv) != "":
			from = "$" + tokenFileEnv
		default:
			from = "systemd credential"
		}
		return tokenAt, from, nil
	}
	sidecar := simTokenPath(path)
	if _, err := os.Lstat(sidecar); err != nil {
		return "", "", usageErrorf("no token to check %s with; pass --token-file PATH, or set $%s, to the token of the worker that wrote it", path, tokenFileEnv)
	}
	if !slices.Equal(s.Backends, []string{backendSim}) {
		return "", "", usageErrorf("audit log %s does not say that only simulated GPUs wrote it, so the token beside it (%s) is not used: whoever can write its directory could have made both; pass --token-file PATH, or set $%s, to the token of the worker that wrote it",
			path, sidecar, tokenFileEnv)
	}
	return sidecar, "kept beside the log by a run on simulated GPUs", nil
}

// readSummary sums up every line of f that reads as a record, from the start.
func readSummary(f *os.File) (audit.Summary, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return audit.Summary{}, safefile.Cause(err)
	}
	return audit.Summarize(f, -1)
}

// wrongKey says why key is not the one that wrote a log, from what the
// log's lines claim: another worker, or a token with another fingerprint.
// It returns nil when the key matches what they claim, so that a bad chain
// is tampering. (Someone who edits those claims can make tampering look like
// a wrong key; with the right key, verify then says which line was edited.)
func wrongKey(s audit.Summary, key *audit.Key, tokenAt string) error {
	if len(s.Workers) > 0 && !slices.Contains(s.Workers, key.WorkerID()) {
		return fmt.Errorf("it was written by worker %s, not %q; pass --worker-id %s", strings.Join(s.Workers, ", "), key.WorkerID(), s.Workers[0])
	}
	if len(s.KeyFingerprints) > 0 && !slices.Contains(s.KeyFingerprints, key.Fingerprint()) {
		return fmt.Errorf("it was written with the token of fingerprint %s, and the token in %s has fingerprint %s; pass --token-file (or set $%s) to the token that wrote it",
			strings.Join(s.KeyFingerprints, ", "), tokenAt, key.Fingerprint(), tokenFileEnv)
	}
	return nil
}

// printSummary writes what an intact log records.
func printSummary(w io.Writer, path string, r audit.Report, held audit.HeadReport, s audit.Summary, checkedWith string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "audit log %s is intact: %d records by worker %q, head %s\n", path, r.Records, r.WorkerID, r.Head)
	fmt.Fprintf(&b, "  token:      %s\n", checkedWith)
	fmt.Fprintf(&b, "  time span:  %s to %s (%s)\n", s.First.Format(time.RFC3339), s.Last.Format(time.RFC3339), s.Last.Sub(s.First).Round(time.Second))
	fmt.Fprintf(&b, "  workers:    %s\n", strings.Join(s.Workers, ", "))
	if held.Checked > 0 {
		fmt.Fprintf(&b, "  heads:      holds all %d given, the last at seq %d\n", held.Checked, held.LastMatched.Seq)
	}
	critical := 0
	var kinds []string
	for _, event := range slices.Sorted(maps.Keys(s.Critical)) {
		critical += s.Critical[event]
		kinds = append(kinds, fmt.Sprintf("%s %d", event, s.Critical[event]))
	}
	if critical == 0 {
		fmt.Fprintf(&b, "  critical:   none\n")
	} else {
		fmt.Fprintf(&b, "  critical:   %d (%s)\n", critical, strings.Join(kinds, ", "))
	}
	switch {
	case s.LastStop == nil:
		fmt.Fprintf(&b, "  last stop:  none recorded (the worker is running, or did not stop cleanly)\n")
	case s.LastStop.Graceful:
		fmt.Fprintf(&b, "  last stop:  %s, graceful\n", s.LastStop.Time.Format(time.RFC3339))
	default:
		fmt.Fprintf(&b, "  last stop:  %s, fail-stop: %s\n", s.LastStop.Time.Format(time.RFC3339), s.LastStop.Cause)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// namedWorker is the worker ID of the first line of f that names one, or ""
// when none does.
func namedWorker(f *os.File) (string, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", safefile.Cause(err)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), audit.MaxLineBytes)
	for sc.Scan() {
		var head struct {
			WorkerID string `json:"worker_id"`
		}
		if json.Unmarshal(sc.Bytes(), &head) == nil && head.WorkerID != "" {
			return head.WorkerID, nil
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
		return "", err
	}
	return "", nil
}
