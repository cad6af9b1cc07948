#!/usr/bin/env bash
# gpucheck.sh checks vramseal on a machine with an NVIDIA GPU and driver but
# no Go toolchain. It uses binaries built elsewhere, from the repository root:
#
#   ./make.sh build
#   CGO_CFLAGS="-O2 -g -Wno-deprecated-declarations" go test -c -o bin/cuda.test ./cuda/driver/
#
# (the flags make.sh builds with: cgo's default -O2 -g, minus go-nvml's
# deprecation warnings)
#
# Copy bin/ and this script to the GPU machine and run:
#
#   cuda/gpucheck.sh [BIN_DIR]      (BIN_DIR defaults to ./bin)
#
# GPUCHECK_MODEL_BYTES changes the synthetic model's size (default 1 GiB);
# GPUCHECK_HASH_BYTES the allocation hashed for throughput (default 4 GiB,
# at most half the free memory); GPUCHECK_TIMEOUT the seconds the whole
# check may take (default 540, to fit one 10-minute command of a 15-minute
# device lease): each step gets what is left, and a step that runs out fails.
#
# It runs, and stops at the first failure:
#   1. the Device contract suite against CUDA device 0 (TestDriverContract),
#      which must run, not skip;
#   2. vramseal devices;
#   3. vramseal run --backend cuda for 20 s on a 1 GiB synthetic model, with a
#      fresh 0600 token file and audit log, scrubbing every 5 s, then
#      vramseal audit verify on the log it wrote;
#   4. BenchmarkDriverCopy, and prints host-to-device, device-to-host and
#      verify (device-to-host plus SHA-256) throughput;
#   5. the SHA-256 kernel against host hashing of the same shards, 1 MiB to
#      1 GiB, in 64 KiB and 4 MiB chunks (TestDriverOnDeviceHashesLikeTheHost:
#      every digest equal, and the kernel must have loaded);
#   6. device pointers reach the bytes: a copy through an allocation's
#      pointer against its bytes (TestDriverOnDevicePointerReachesTheBytes),
#      and, through the embedding API, a supervisor runtime over the Driver
#      that seals a shard of random bytes and acquires it (plain and
#      verified): Lease.Size() bytes copied device-to-host through
#      Lease.DevicePointer() must hash to the shard record's digest
#      (TestDriverOnDeviceLeasePointerReachesTheSealedBytes);
#   7. BenchmarkDriverHash, and prints GB/s for hashing on the device (one
#      thread per chunk, by chunk size, in one launch; and 4 MiB chunks in a
#      launch per 256 MiB), for device-to-host plus SHA-256 on every core,
#      and for device-to-host alone, with their ratios.
# Needs: bash, coreutils, awk, grep; nvidia-smi is used when present.
set -euo pipefail

bin_dir=${1:-bin}
model_bytes=${GPUCHECK_MODEL_BYTES:-1073741824}
budget=${GPUCHECK_TIMEOUT:-540}
deadline=$((SECONDS + budget))
cuda_test="$bin_dir/cuda.test"
vramseal="$bin_dir/vramseal"

fail() { printf 'gpucheck: %s\n' "$*" >&2; exit 1; }
# left is the time the next command may take: what is left of the budget,
# at least a second (a zero timeout would mean none).
left() { printf '%ds' $((deadline - SECONDS > 0 ? deadline - SECONDS : 1)); }
step() {
	((SECONDS < deadline)) || fail "out of time: GPUCHECK_TIMEOUT is ${budget}s"
	printf '\n== %s\n' "$*"
}

for exe in "$cuda_test" "$vramseal"; do
	[[ -x $exe ]] || fail "$exe is missing or not executable; build it as this script's header says"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/vramseal-gpucheck.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

step "GPU"
if command -v nvidia-smi >/dev/null 2>&1; then
	nvidia-smi --query-gpu=index,name,memory.total,memory.used,driver_version --format=csv
else
	echo "nvidia-smi not found; relying on the driver library alone"
fi

step "Device contract on CUDA device 0"
contract_log="$work/contract.log"
"$cuda_test" -test.timeout "$(left)" -test.run '^TestDriverContract$' -test.v -test.count 1 2>&1 | tee "$contract_log"
grep -q -- '--- PASS: TestDriverContract ' "$contract_log" ||
	fail "TestDriverContract did not pass (skipped means no driver or GPU was found)"

step "vramseal devices"
timeout "$(left)" "$vramseal" devices

step "vramseal run --backend cuda on a $model_bytes-byte synthetic model"
(
	umask 077
	head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$work/token"
	head -c "$model_bytes" /dev/urandom >"$work/model.bin"
)
[[ $(stat -c %a "$work/token") == 600 ]] || fail "token file is not mode 0600"
timeout "$(left)" "$vramseal" run --backend cuda --duration 20s --verify-interval 5s --listen 127.0.0.1:0 \
	--token-file "$work/token" --audit-log "$work/audit.jsonl" "$work/model.bin"
timeout "$(left)" "$vramseal" audit verify --token-file "$work/token" "$work/audit.jsonl"

step "Copy throughput (BenchmarkDriverCopy)"
bench_log="$work/bench.log"
"$cuda_test" -test.timeout "$(left)" -test.run '^$' -test.bench '^BenchmarkDriverCopy$' -test.benchtime 20x 2>&1 | tee "$bench_log"
awk '
	/^BenchmarkDriverCopy\/(HtoD|DtoH|Verify)/ {
		name = $1; sub(/^BenchmarkDriverCopy\//, "", name); sub(/-[0-9]+$/, "", name)
		for (i = 2; i < NF; i++) if ($(i + 1) == "MB/s") rate[name] = $i
	}
	END {
		if (!("HtoD" in rate) || !("DtoH" in rate) || !("Verify" in rate)) exit 1
		printf "host-to-device: %10.0f MB/s\n", rate["HtoD"]
		printf "device-to-host: %10.0f MB/s\n", rate["DtoH"]
		printf "verify:         %10.0f MB/s  (device-to-host + SHA-256, one core)\n", rate["Verify"]
	}
' "$bench_log" || fail "BenchmarkDriverCopy reported no throughput (skipped means no driver or GPU was found)"

step "SHA-256 kernel against host hashing (TestDriverOnDeviceHashesLikeTheHost)"
kernel_log="$work/kernel.log"
"$cuda_test" -test.timeout "$(left)" -test.run '^TestDriverOnDeviceHashesLikeTheHost$' -test.v -test.count 1 2>&1 | tee "$kernel_log"
grep -q -- '--- PASS: TestDriverOnDeviceHashesLikeTheHost ' "$kernel_log" ||
	fail "the kernel's digests did not match host hashing, or the kernel did not load"

step "Device pointers reach the bytes, also a lease's through the embedding API"
pointer_log="$work/pointer.log"
"$cuda_test" -test.timeout "$(left)" -test.run '^TestDriverOnDevice(Lease)?PointerReaches' -test.v -test.count 1 2>&1 | tee "$pointer_log"
grep -q -- '--- PASS: TestDriverOnDevicePointerReachesTheBytes ' "$pointer_log" ||
	fail "a copy through an allocation's device pointer did not match its bytes"
grep -q -- '--- PASS: TestDriverOnDeviceLeasePointerReachesTheSealedBytes ' "$pointer_log" ||
	fail "a copy through a lease's device pointer did not match the shard's digest"
grep -F 'bytes copied out through the device pointer of a lease' "$pointer_log" | sed 's/^ *[^ :]*:[0-9]*: //'

step "Hash throughput (BenchmarkDriverHash)"
hash_log="$work/hash.log"
"$cuda_test" -test.timeout "$(left)" -test.run '^$' -test.bench '^BenchmarkDriverHash$' -test.benchtime 5x 2>&1 | tee "$hash_log"
awk '
	/^BenchmarkDriverHash\// {
		name = $1; sub(/^BenchmarkDriverHash\//, "", name); sub(/-[0-9]+$/, "", name)
		for (i = 2; i < NF; i++) if ($(i + 1) == "MB/s") rate[name] = $i / 1000
		order[++n] = name
	}
	END {
		if (!("DtoH" in rate) || !("DtoH+SHA256" in rate) || !("device/4096KiB" in rate)) exit 1
		for (i = 1; i <= n; i++) {
			name = order[i]
			if (name !~ /^device\//) continue
			printf "device hashing, %-34s %8.1f GB/s  (%5.1f x DtoH, %5.1f x DtoH+SHA256)\n", substr(name, 8) " chunks:",
				rate[name], rate[name] / rate["DtoH"], rate[name] / rate["DtoH+SHA256"]
		}
		printf "DtoH + SHA-256, all cores:                          %8.1f GB/s\n", rate["DtoH+SHA256"]
		printf "DtoH alone:                                         %8.1f GB/s\n", rate["DtoH"]
	}
' "$hash_log" || fail "BenchmarkDriverHash reported no throughput (skipped means no driver or GPU was found)"

step "gpucheck passed"
