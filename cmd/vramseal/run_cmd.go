package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/vramseal/vramseal/gpuhealth"
	"github.com/vramseal/vramseal/sealer"
)

// runOptions are the flags of "vramseal run".
type runOptions struct {
	backend        backendFlags
	tokenFile      string
	auditLog       string
	verifyInterval time.Duration
	scrubRate      rateFlag
	chunkSize      sizeFlag
	chunkSizeSet   bool // --chunk-size given: no default by device
	headroom       sizeFlag
	duration       time.Duration
	workerID       string
	shardID        string
	modelRef       string
	listen         string
	simFault       simFaultFlag
	identity       identityOptions
	seed           seedFlag
	serve          serveOptions

	// Real GPUs only, through NVML.
	contention         gpuhealth.ContentionPolicy
	contentionInterval time.Duration
	ignoreXIDs         xidListFlag
}

func newRunCommand(a *app) *cobra.Command {
	o := &runOptions{
		chunkSize:          sizeFlag{bytes: sealer.DefaultChunkSize},
		contention:         gpuhealth.ContentionWarn,
		contentionInterval: gpuhealth.DefaultContentionInterval,
		ignoreXIDs:         newXIDListFlag(),
	}
	cmd := &cobra.Command{
		Use:   "run [flags] [MODEL_FILE... | MODEL_DIR]",
		Short: "Seal model files into GPU memory and keep proving them intact",
		Long: `run seals each MODEL_FILE as one shard onto the device with the most free
memory, streaming it through a few chunk-sized buffers, and verifies every
shard; then it re-hashes them in the background every --verify-interval until
SIGINT or SIGTERM, or for --duration. With no files it seals a demo model:
three random 64 MiB shards. Given one MODEL_DIR, it seals every *.safetensors
in it as the shards of one model (its index, if any, must match the files),
in parallel up to the number of cores. A .safetensors header is checked
before anything is allocated. Each completed scrub pass logs one line per
device (shards, bytes, elapsed, rate, next pass); at stop a summary says how
many passes re-hashed how many bytes, with what mismatches, and when each
shard was last fully verified.

--sha256sums, --expect-sha256 and --signature (OpenSSF Model Signing, key
method, verified offline with --public-key) say what each file must hash to;
a seal is acknowledged only once the digests computed while streaming match.

The worker token is read from --token-file, else $VRAMSEAL_TOKEN_FILE, else
$CREDENTIALS_DIRECTORY/vramseal-token (systemd LoadCredential); never from the
command line. The file must be private (chmod 600) and hold at least 16 bytes.
Real GPUs need a token. Simulated ones, given none, make a random token and
keep it beside the audit log (vramseal-audit.jsonl -> vramseal-audit.token,
mode 0600, never overwritten), so that the next run continues the same log and
"vramseal audit verify" can check it.

The audit log defaults to vramseal-audit.jsonl in $STATE_DIRECTORY when it is
set (systemd's StateDirectory=), else in the working directory.

Under systemd (Type=notify) it sends READY=1 once every shard is sealed and
verified, STOPPING=1 as it begins to stop, and, with WatchdogSec=, a watchdog
ping every half period while the runtime answers. deploy/ holds a systemd
unit and Kubernetes manifests; the README's "Deploying" explains them.

--listen serves / (the list), /metrics (Prometheus: vram_* series and
vramseal_build_info, with device and uuid labels), /healthz, /readyz (200 once
every shard was verified within three scrub cycles and nothing failed; a
cycle is the pause plus, with --scrub-rate, the time a pass takes; a warning
line when --scrub-rate cannot cover the fullest device within three
--verify-interval) and /shards (JSON).

--serve PATH serves the sealed shards to other processes on the same host (an
inference server: share/python is a Python client) over a Unix socket, mode
0660: a client acquires a lease, verified first if it asks, and maps the
shard's memory read-only, without a copy; a revocation (a fail-stop, a stop)
reaches every client before the memory is freed. Peers are checked by
SO_PEERCRED: this worker's user and root, and --serve-allow-uid and
--serve-allow-gid. On simulated GPUs a shard is a sealed memfd; on real ones
every allocation is made shareable (CUDA VMM, rounded up to the 2 MiB
granularity) and a client imports it read-only in the GPU's primary context.
vramseal share check --socket PATH maps every shard as a client would.

--sim-fault plants one bit flip in simulated VRAM, in a shard, byte and bit
chosen by --seed and logged, and warns at start when the run cannot catch it
(--verify-interval 0, or a --duration shorter than the pause plus two passes).

On real GPUs the worker also watches them through NVML, if the driver has it
(else it warns and runs unwatched). A critical XID or a double-bit ECC error
on any GPU fail-stops the worker, except the XIDs in --ignore-xids, which an
application causes and which are only logged. /readyz answers 503 while NVML
reports memory pages pending retirement or a failed row remap. Once sealing
is done it looks for other processes on its GPUs every --contention-interval
and, per --on-contention, ignores them, warns, or evicts: frees every shard on
that GPU, audits why, and stays not ready. NVML numbers GPUs in PCI order and
CUDA fastest first; the log maps one to the other by UUID, and health events
name NVML's number. In a container with its own PID namespace NVML shows this
process under its host PID, as if it were another: use warn there, or the
host's PID namespace.

Exit codes: 0 stopped by a signal or --duration, with VRAM freed and the audit
log closed; 1 other failure, or a --sim-fault flip the run did not catch
(it says so); 2 bad usage or configuration (nothing sealed);
3 fail-stop on an integrity or device failure (printed once: the cause names
the shard, chunk and byte range, or the GPU and XID, then "VRAM freed, audit
log closed (N records)"), or a GPU that breaks the VRAM-only policy (nothing
sealed); 4 not the published model: a file's digest differs from
--sha256sums, --expect-sha256 or --signature, or the signature does not
verify (that file's memory freed, a critical ModelRejected record).`,
		Example: `  # Seal the demo model on simulated GPUs, scrub every 2s for ten seconds, stop
  vramseal run --duration 10s --verify-interval 2s

  # Seal two shards of a model with a private token, metrics on port 9400
  (umask 077; head -c 32 /dev/urandom > vramseal.token)
  vramseal run --token-file vramseal.token --model-ref llama-3-8b \
    model-00001-of-00002.safetensors model-00002-of-00002.safetensors

  # Serve the shards to an inference process on this host (share/python)
  vramseal run --serve /run/vramseal/share.sock --serve-allow-gid 1000

  # Watch a planted bit flip being caught (exits 3); --seed repeats a run's choice
  vramseal run --sim-fault bitflip@3s --verify-interval 500ms --seed 42

  # On a shared GPU server: evict a GPU's shards when another process uses it,
  # and treat XID 13 as a fault too
  vramseal run --backend cuda --token-file /etc/vramseal/token \
    --on-contention evict --ignore-xids 31,43,45,68,109 model.safetensors`,
		RunE: func(cmd *cobra.Command, files []string) error {
			o.chunkSizeSet = cmd.Flags().Changed("chunk-size")
			return o.run(cmd.Context(), a, files)
		},
	}
	f := cmd.Flags()
	o.backend.register(cmd)
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the worker token (else $"+tokenFileEnv+", else $CREDENTIALS_DIRECTORY/"+credentialName+")")
	f.StringVar(&o.auditLog, "audit-log", defaultAuditLog(), "append-only audit log, continued if it exists; by default in $STATE_DIRECTORY when set, else in the working directory")
	f.DurationVar(&o.verifyInterval, "verify-interval", 30*time.Second, "pause between background scrub passes; 0 turns scrubbing off")
	f.Var(&o.scrubRate, "scrub-rate", "bytes per second per device the scrub may read (e.g. 1GiB/s)")
	f.Var(&o.chunkSize, "chunk-size", "unit of copying and hashing: a power of two from 64KiB to 64MiB (default 4MiB, or 64KiB on GPUs that hash on the device)")
	f.Var(&o.headroom, "headroom", "device memory to leave free on every device (e.g. 1GiB)")
	f.DurationVar(&o.duration, "duration", 0, "once every shard is sealed and verified, serve this long (e.g. 10s) and stop gracefully; 0 runs until SIGINT or SIGTERM")
	f.StringVar(&o.workerID, "worker-id", defaultWorkerID(), "this worker's name in the audit log; keys are derived per worker")
	f.StringVar(&o.shardID, "id", "", "shard ID for the one MODEL_FILE (default: from the file name)")
	f.StringVar(&o.modelRef, "model-ref", "", "model the files belong to; they become its shards, in order")
	f.StringVar(&o.listen, "listen", "127.0.0.1:9400", "address for /, /metrics, /healthz, /readyz and /shards (port 0 picks a free port; empty turns them off)")
	o.identity.register(f)
	o.serve.register(f)
	f.Var(&o.simFault, "sim-fault", "simulated devices only: this long after sealing, flip one bit of one shard (chosen with --seed, named in the log) to show the fail-stop; a run that ends without catching it exits 1")
	f.Var(&o.seed, "seed", "seed of --sim-fault's choice of shard, byte and bit; logged, so a run can be repeated")
	f.Var(&o.contention, "on-contention", "real GPUs only: when another process uses a GPU holding shards, ignore it, warn, or evict the GPU's shards and turn not ready")
	f.DurationVar(&o.contentionInterval, "contention-interval", gpuhealth.DefaultContentionInterval, "real GPUs only: how often to look for other processes on the GPUs")
	f.Var(&o.ignoreXIDs, "ignore-xids", "real GPUs only: XIDs that are an application's fault and only logged, not a fail-stop; none makes every critical XID fatal")
	return cmd
}

// defaultWorkerID is the host name, or "vramseal" if it has none.
func defaultWorkerID() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "vramseal"
}

// validate checks the flags that need no files or devices to check.
func (o *runOptions) validate() error {
	if err := o.backend.validate(); err != nil {
		return err
	}
	if err := o.checkBounds(); err != nil {
		return err
	}
	if o.simFault.set && o.backend.kind.String() == backendCUDA {
		return simFaultOnRealGPUsError()
	}
	if err := o.serve.validate(); err != nil {
		return err
	}
	if err := sealer.ValidateChunkSize(o.chunkSize.bytes); err != nil {
		return usageErrorf("--chunk-size %s: %w", o.chunkSize.String(), err)
	}
	switch {
	case o.verifyInterval < 0:
		return usageErrorf("--verify-interval %s is negative; use e.g. 30s, or 0 to turn scrubbing off", o.verifyInterval)
	case o.contentionInterval <= 0:
		return usageErrorf("--contention-interval %s must be positive, e.g. 5s", o.contentionInterval)
	case o.duration < 0:
		return usageErrorf("--duration %s is negative; use e.g. 10s, or 0 to run until stopped", o.duration)
	case o.workerID == "":
		return usageErrorf("--worker-id is empty; name this worker, e.g. --worker-id %s", defaultWorkerID())
	case o.auditLog == "":
		return usageErrorf("--audit-log is empty; name the audit log file, e.g. --audit-log ./vramseal-audit.jsonl")
	}
	return nil
}

// scrubCoverageWarning says, when --scrub-rate rather than --verify-interval
// sets how stale shards get, that the scrub cannot cover the fullest
// device's bytes within three --verify-interval, and how wide the freshness
// window becomes instead; "" when it can.
func (o *runOptions) scrubCoverageWarning(deviceBytes int64) string {
	rate := o.scrubRate.bytesPerSecond
	if o.verifyInterval == 0 || rate == 0 {
		return ""
	}
	pass := time.Duration(float64(deviceBytes) / float64(rate) * float64(time.Second))
	if pass <= 3*o.verifyInterval {
		return ""
	}
	return fmt.Sprintf("at --scrub-rate %s a pass over the fullest device's %s takes %s, longer than three --verify-interval (%s): a shard may go %s between verifications (the freshness window); raise --scrub-rate to keep shards fresher",
		o.scrubRate.String(), formatSize(deviceBytes), pass.Round(time.Second), 3*o.verifyInterval, o.freshnessWindow(deviceBytes).Round(time.Second))
}

// freshnessWindow is how recently every shard must have been verified for
// the worker to be ready, given the bytes sealed onto its fullest device:
// three scrub cycles (the pause plus, when --scrub-rate limits it, the time
// a pass takes), so one slow pass does not flap readiness. Zero (no
// scrubbing) means verified once is enough.
func (o *runOptions) freshnessWindow(deviceBytes int64) time.Duration {
	if o.verifyInterval == 0 {
		return 0
	}
	cycle := o.verifyInterval
	if rate := o.scrubRate.bytesPerSecond; rate > 0 {
		cycle += time.Duration(float64(deviceBytes) / float64(rate) * float64(time.Second))
	}
	return 3 * cycle
}
