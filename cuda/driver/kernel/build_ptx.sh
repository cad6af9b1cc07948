#!/usr/bin/env bash
# build_ptx.sh regenerates sha256.ptx, the PTX of the SHA-256 kernel in
# sha256.c, with clang for nvptx64 (no CUDA toolkit, no nvcc). Run it after
# changing sha256.c, then build_cubins.sh, and commit all; package kernel's
# TestPTXIsUpToDate fails when the committed PTX is not what this script makes
# with the same clang.
#
#   cuda/driver/kernel/build_ptx.sh [OUT]    (OUT defaults to sha256.ptx beside it)
#
# It installs clang from Debian (apt-get) if clang is missing. The PTX's first
# line names the clang that made it: other clang versions make other, equally
# valid, PTX. sm_80 PTX is JIT-compiled by the driver for any GPU from Ampere
# on (Hopper included).
set -euo pipefail

dir=$(cd "$(dirname "$0")" && pwd)
out=${1:-$dir/sha256.ptx}

if ! command -v clang >/dev/null 2>&1; then
	echo "build_ptx.sh: clang not found; installing it from Debian" >&2
	apt-get update
	apt-get install -y clang
fi

version=$(clang --version | head -n 1)
tmp=$(mktemp "${TMPDIR:-/tmp}/sha256.ptx.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
# Run from the source directory with a relative input, so nothing about
# this checkout's path can reach the output.
(cd "$dir" && clang -x cuda --cuda-gpu-arch=sm_80 -nocudainc -nocudalib --cuda-device-only \
	-O3 -S -o "$tmp" sha256.c)
{
	printf '// sha256.ptx: made from sha256.c by build_ptx.sh with %s. Do not edit.\n' "$version"
	cat "$tmp"
} >"$out"
