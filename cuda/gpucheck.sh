#!/usr/bin/env bash
# gpucheck.sh is a one-shot instrument for vramseal on a machine with an
# NVIDIA GPU and driver but no Go toolchain: one run answers everything, in
# a bounded time, even when steps fail. Build its binaries elsewhere, from
# the repository root:
#
#   cuda/gpucheck.sh build          (bin/vramseal, bin/cuda.test and
#                                    bin/gpucheck.commit, the commit they
#                                    are built from)
#
# then copy bin/ and this script to the GPU machine and run:
#
#   cuda/gpucheck.sh [BIN_DIR]      (BIN_DIR defaults to ./bin)
#
# Every step runs, whatever the ones before it did, each under
# "timeout -k" within its own cap and what is left of the budget,
# GPUCHECK_TIMEOUT seconds (default 300, which leaves a 15-minute device
# lease time for start-up and a rerun); the caps plus their kill grace fit
# in the default budget, and the script says so before it starts. Each
# step's full output goes to a log in $OUT (else $GPUCHECK_OUT, else a new
# temporary directory), kept; stdout is only the header (commit, GPU,
# driver, MIG and compute mode, clocks, glibc, libcuda) and a summary table
# of step, result, seconds and figure, under 4,000 characters. It exits 1
# if any step failed, or was not run for want of time: a check cut short is
# not a pass.
#
# Steps:
#   contract  the Device contract suite on CUDA device 0, plain and opened
#             shareable (TestDriverContract, TestDriverContractShareable)
#   device    every TestDriverOnDevice* test
#   kernel    the SHA-256 kernel loaded (a failure here means the scrub would
#             copy every byte out): which image, registers, local memory
#   copy      BenchmarkDriverCopy: host-to-device and device-to-host GB/s
#   hash      BenchmarkDriverHash: kernel GB/s by chunk size (64 KiB, 1 MiB,
#             4 MiB) for one shard and for a whole-device batch of shards,
#             against device-to-host plus SHA-256 on every core
#   devices   vramseal devices (needs NVML; skipped without it)
#   run       vramseal run --backend cuda on a synthetic model
#             (GPUCHECK_MODEL_BYTES, default 1 GiB) for GPUCHECK_RUN_SECONDS
#             (default 20) with scrubbing every 2 s: its scrub rate
#   audit     vramseal audit verify on the run's audit log
#   share     vramseal run --backend cuda --serve on a synthetic model
#             (GPUCHECK_SHARE_BYTES, default 64 MiB and 5 bytes, so that the
#             shard does not fill its last 2 MiB granule) and, beside it, the
#             second process vramseal share check: it imports each shard's
#             cuda-vmm-fd, maps it with CU_MEM_ACCESS_FLAGS_PROT_READ, copies
#             it out, compares its SHA-256 with the grant's and tries a
#             write through the mapping, which must be refused
#
# GPUCHECK_HASH_BYTES sets the bytes the hash benchmark hashes (default
# 4 GiB, at most half the free memory). Needs bash, coreutils (timeout),
# awk, grep; nvidia-smi and ldconfig are used when present.
set -uo pipefail # not -e: a failed step must not stop the others

here=$(cd "$(dirname "$0")" && pwd)

if [[ ${1:-} == build ]]; then
	set -e
	cd "$here/.."
	./make.sh build
	CGO_CFLAGS="-O2 -g -Wno-deprecated-declarations" go test -c -o bin/cuda.test ./cuda/driver/
	commit=$(git rev-parse HEAD)
	if [[ -n $(git status --porcelain --untracked-files=no) ]]; then
		commit+=" (with uncommitted changes)"
	fi
	printf '%s\n' "$commit" >bin/gpucheck.commit
	exit 0
fi

bin_dir=${1:-bin}
budget=${GPUCHECK_TIMEOUT:-300}
model_bytes=${GPUCHECK_MODEL_BYTES:-1073741824}
run_seconds=${GPUCHECK_RUN_SECONDS:-20}
share_bytes=${GPUCHECK_SHARE_BYTES:-67108869}
out=${OUT:-${GPUCHECK_OUT:-}}
[[ -n $out ]] || out=$(mktemp -d "${TMPDIR:-/tmp}/vramseal-gpucheck.XXXXXX")
mkdir -p "$out"
out=$(cd "$out" && pwd)
cuda_test="$bin_dir/cuda.test"
vramseal="$bin_dir/vramseal"
summary="$out/summary.txt"
: >"$summary"

# say prints a line of the summary and keeps it in $out/summary.txt.
say() { printf '%s\n' "$*" | tee -a "$summary"; }

# grace is the -k of every timeout: how long a command that ignores SIGTERM
# (vramseal run waiting on a stuck copy) gets before SIGKILL.
grace=3
# The steps in order, with the most seconds each may take.
steps=(contract:35 device:75 kernel:0 copy:25 hash:50 devices:10 run:45 audit:10 share:20)
planned=0
for s in "${steps[@]}"; do
	cap=${s#*:}
	((cap > 0)) && planned=$((planned + cap + grace))
done
deadline=$((SECONDS + budget))

# has_lib reports whether the dynamic loader would find library $1.
has_lib() {
	local d
	for d in ${LD_LIBRARY_PATH//:/ }; do
		[[ -e $d/$1 ]] && return 0
	done
	command -v ldconfig >/dev/null 2>&1 && ldconfig -p 2>/dev/null | grep -qF "$1 "
}

# rate prints benchmark $1's MB/s from log $2 as GB/s, or "?".
rate() {
	awk -v want="$1" '
		{ name = $1; sub(/-[0-9]+$/, "", name) }
		name == want { for (i = 2; i < NF; i++) if ($(i + 1) == "MB/s") { printf "%.1f", $i / 1000; found = 1; exit } }
		END { if (!found) printf "?" }
	' "$2"
}

# ---- header
say "== vramseal gpucheck $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "commit:  $(cat "$bin_dir/gpucheck.commit" 2>/dev/null || echo "unknown (bin/gpucheck.commit missing: build with 'cuda/gpucheck.sh build')")"
say "glibc:   $(getconf GNU_LIBC_VERSION 2>/dev/null || echo unknown); kernel $(uname -r)"
libcuda=$(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 / { print $NF; exit }')
say "libcuda: ${libcuda:-not in the ldconfig cache}${LD_LIBRARY_PATH:+ (LD_LIBRARY_PATH=$LD_LIBRARY_PATH)}"
if command -v nvidia-smi >/dev/null 2>&1; then
	timeout -k "$grace" 15 nvidia-smi >"$out/nvidia-smi.log" 2>&1
	timeout -k "$grace" 15 nvidia-smi --format=csv,noheader --query-gpu=index,name,driver_version,mig.mode.current,compute_mode,persistence_mode,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,memory.total,memory.used \
		>"$out/gpus.csv" 2>&1
	while IFS=, read -r idx name drv mig mode pers sm smax mem mmax total used; do
		say "gpu $idx:  $name; driver $drv; MIG ${mig# }; compute mode ${mode# }; persistence ${pers# }"
		say "         clocks SM $sm of $smax, memory $mem of $mmax; memory $used used of $total"
	done <"$out/gpus.csv"
else
	say "gpu:     nvidia-smi not found; the device tests report what the driver says"
fi
say "time:    budget ${budget}s; steps capped at ${planned}s in all (caps plus ${grace}s kill grace each)"
say "logs:    $out"
say ""
say "$(printf '%-9s %-5s %5s  %s' step result secs figure)"

failed=0 # steps that failed
unrun=0  # steps skipped for want of time: the check is not complete
# step NAME CAP runs step_NAME with $log and $limit set, and adds its row:
# step_NAME returns 0 pass, 2 skip, anything else fail, and sets $figure.
step() {
	local name=$1 cap=$2 started=$SECONDS result rc
	log="$out/$name.log"
	: >"$log"
	figure=""
	limit=$((deadline - SECONDS - grace))
	((limit > cap)) && limit=$cap
	if ((cap > 0 && limit < 1)); then
		result=SKIP figure="skipped: out of time (GPUCHECK_TIMEOUT ${budget}s)"
		unrun=$((unrun + 1))
	else
		"step_$name"
		rc=$?
		case $rc in
		0) result=PASS ;;
		2) result=SKIP ;;
		124 | 137) result=FAIL figure="timed out after ${limit}s${figure:+; $figure}" ;;
		*) result=FAIL ;;
		esac
	fi
	[[ $result == FAIL ]] && failed=$((failed + 1))
	say "$(printf '%-9s %-5s %5d  %s' "$name" "$result" $((SECONDS - started)) "${figure:0:300}")"
}

# run_test PATTERN runs cuda.test's tests matching PATTERN into $log.
run_test() {
	[[ -x $cuda_test ]] || { figure="$cuda_test is missing: build with 'cuda/gpucheck.sh build'"; return 1; }
	timeout -k "$grace" "$limit" "$cuda_test" -test.run "$1" -test.v -test.count 1 >>"$log" 2>&1
}

# run_bench PATTERN TIMES runs cuda.test's benchmarks matching PATTERN.
run_bench() {
	[[ -x $cuda_test ]] || { figure="$cuda_test is missing: build with 'cuda/gpucheck.sh build'"; return 1; }
	timeout -k "$grace" "$limit" "$cuda_test" -test.run '^$' -test.bench "$1" -test.benchtime "$2" >>"$log" 2>&1
}

step_contract() {
	run_test '^TestDriverContract(Shareable)?$'
	local rc=$?
	figure="$(grep -cE -- '--- PASS: TestDriverContract(Shareable)?/' "$log") checks passed, $(grep -cE -- '--- FAIL: TestDriverContract(Shareable)?/' "$log") failed (plain and shareable)"
	grep -q -- '--- SKIP: TestDriverContract ' "$log" && figure="skipped: no driver or GPU found" && return 1
	((rc == 0)) && grep -q -- '--- PASS: TestDriverContract ' "$log" && grep -q -- '--- PASS: TestDriverContractShareable ' "$log" || return $((rc ? rc : 1))
}

step_device() {
	run_test '^TestDriverOnDevice'
	local rc=$? pass fail skip
	pass=$(grep -c -- '^--- PASS: TestDriverOnDevice' "$log")
	fail=$(grep -- '^--- FAIL: TestDriverOnDevice' "$log" | awk '{ print $3 }' | paste -sd ' ')
	skip=$(grep -c -- '^--- SKIP: TestDriverOnDevice' "$log")
	figure="$pass passed, $skip skipped, failed: ${fail:-none}"
	((rc == 0 && pass > 0)) || return $((rc ? rc : 1))
}

step_kernel() {
	local device="$out/device.log" line
	line=$(grep -m1 -F 'SHA-256 kernel loaded' "$device")
	printf '%s\n' "$line" >>"$log"
	if ! grep -q -- '--- PASS: TestDriverOnDeviceLoadsTheMatchingKernelImage ' "$device" || [[ -z $line ]]; then
		figure="no sign the kernel loaded (TestDriverOnDeviceLoadsTheMatchingKernelImage did not pass; see device.log): the scrub would copy every byte out"
		return 1
	fi
	figure=$(grep -oE '(name="[^"]*"|image="[^"]*"|image=[^ ]+|compute_capability=[^ ]+|cuda_driver_version=[^ ]+|registers=[^ ]+|local_bytes=[^ ]+)' <<<"$line" |
		paste -sd ' ')
	grep -qE 'local_bytes=0( |$)' <<<"$line" || { figure="local memory used: $figure"; return 1; }
}

step_copy() {
	run_bench '^BenchmarkDriverCopy$' 10x
	local rc=$?
	figure="HtoD $(rate BenchmarkDriverCopy/HtoD "$log") GB/s, DtoH $(rate BenchmarkDriverCopy/DtoH "$log") GB/s, DtoH+SHA-256 on one core $(rate BenchmarkDriverCopy/Verify "$log") GB/s"
	((rc == 0)) && grep -q '^ok\|^PASS' "$log" || return $((rc ? rc : 1))
}

step_hash() {
	run_bench '^BenchmarkDriverHash$' 5x
	local rc=$? kind c row
	figure="kernel GB/s at 64KiB/1MiB/4MiB chunks:"
	for kind in shard device; do
		row=""
		for c in 64 1024 4096; do
			row+="${row:+/}$(rate "BenchmarkDriverHash/$kind/${c}KiB" "$log")"
		done
		figure+=" $kind $row;"
	done
	figure+=" DtoH+SHA-256 all cores $(rate BenchmarkDriverHash/DtoH+SHA256 "$log"), DtoH $(rate BenchmarkDriverHash/DtoH "$log")"
	((rc == 0)) && grep -q '^ok\|^PASS' "$log" || return $((rc ? rc : 1))
}

step_devices() {
	has_lib libnvidia-ml.so.1 || { figure="skipped: no NVML (libnvidia-ml.so.1)"; return 2; }
	[[ -x $vramseal ]] || { figure="$vramseal is missing"; return 1; }
	timeout -k "$grace" "$limit" "$vramseal" devices >>"$log" 2>&1
	local rc=$?
	figure=$(grep -v '^\s*$' "$log" | head -n 2 | paste -sd ';' | cut -c1-200)
	return $rc
}

step_run() {
	[[ -x $vramseal ]] || { figure="$vramseal is missing: build with 'cuda/gpucheck.sh build'"; return 1; }
	local work="$out/run"
	mkdir -p "$work"
	(
		umask 077
		head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$work/token"
		head -c "$model_bytes" /dev/urandom >"$work/model.bin"
	)
	[[ $(stat -c %a "$work/token") == 600 ]] || { figure="token file is not mode 0600"; return 1; }
	timeout -k "$grace" "$limit" "$vramseal" run --backend cuda --duration "${run_seconds}s" --verify-interval 2s \
		--listen 127.0.0.1:0 --token-file "$work/token" --audit-log "$work/audit.jsonl" "$work/model.bin" >>"$log" 2>&1
	local rc=$? passes rate chunk
	rm -f -- "$work/model.bin"
	passes=$(grep -c 'msg="scrub pass"' "$log")
	rate=$(grep 'msg="scrub pass"' "$log" | tail -n 1 | grep -oE 'rate=("[^"]*"|[^ ]*)' | cut -d= -f2 | tr -d '"')
	chunk=$(grep -m1 -o 'chunk_size=[^ ]*' "$log" | cut -d= -f2)
	figure="$model_bytes-byte model, chunk size ${chunk:-?}: scrub passes $passes, the last at ${rate:-?}"
	((rc == 0 && passes > 0)) || return $((rc ? rc : 1))
}

step_audit() {
	[[ -x $vramseal ]] || { figure="$vramseal is missing"; return 1; }
	[[ -s $out/run/audit.jsonl ]] || { figure="no audit log: the run step did not write one"; return 1; }
	timeout -k "$grace" "$limit" "$vramseal" audit verify --token-file "$out/run/token" "$out/run/audit.jsonl" >>"$log" 2>&1
	local rc=$?
	figure=$(grep -m1 -oE 'is intact: [0-9]+ records|.*(tamper|mismatch|invalid).*' "$log" | cut -c1-200)
	return $rc
}

step_share() {
	[[ -x $vramseal ]] || { figure="$vramseal is missing: build with 'cuda/gpucheck.sh build'"; return 1; }
	local work="$out/share" pid rc=1 i
	mkdir -p "$work"
	(
		umask 077
		head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$work/token"
		head -c "$share_bytes" /dev/urandom >"$work/model.bin"
	)
	timeout -k "$grace" "$limit" "$vramseal" run --backend cuda --serve "$work/share.sock" --listen 127.0.0.1:0 \
		--token-file "$work/token" --audit-log "$work/audit.jsonl" "$work/model.bin" >>"$log" 2>&1 &
	pid=$!
	# Wait until the shard is sealed (the socket serves shards as they are),
	# within the step's one cap, which share check then gets the rest of.
	local started=$SECONDS
	for ((i = 0; i < limit * 10; i++)); do
		grep -q 'every shard sealed and verified' "$log" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if grep -q 'every shard sealed and verified' "$log"; then
		timeout -k "$grace" "$((limit - (SECONDS - started) > 1 ? limit - (SECONDS - started) : 1))" \
			"$vramseal" share check --socket "$work/share.sock" >"$work/check.txt" 2>"$work/check.err"
		rc=$?
		cat "$work/check.txt" "$work/check.err" >>"$log"
		# The hash's line, then the write's (tried last: see share check --help).
		figure="$share_bytes-byte shard, second process: $(cat "$work/check.txt" "$work/check.err" | sed -n '1p;$p' | cut -c1-200 | paste -sd '|' | sed 's/|/ | /')"
	else
		figure="the server did not seal and serve the shard: see share.log"
	fi
	kill -TERM "$pid" 2>/dev/null
	wait "$pid"
	rm -f -- "$work/model.bin"
	return $rc
}

for s in "${steps[@]}"; do
	step "${s%%:*}" "${s#*:}"
done

if grep -qF 'vramseal fake CUDA device' "$out/device.log" 2>/dev/null; then
	say "note:    the stand-in libcuda answered, not a GPU: every figure above is this host's"
fi
say ""
say "time:    used $((SECONDS - deadline + budget))s of ${budget}s"
if ((failed > 0 || unrun > 0)); then
	say "gpucheck: FAIL ($failed of ${#steps[@]} steps failed, $unrun not run for want of time; logs in $out)"
	exit 1
fi
say "gpucheck: PASS"
