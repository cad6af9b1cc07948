#!/usr/bin/env bash
# build_cubins.sh assembles the committed sha256.ptx into sha256_sm80.cubin
# and sha256_sm90.cubin beside it with ptxas (CUDA 11.8 from Debian, see
# fetch_ptxas.sh; $PTXAS or ptxas on PATH if set or present, else fetched
# into a temporary directory). The driver loads the cubin that matches the
# GPU's compute capability and lets the driver JIT-compile the PTX
# otherwise. Run it after build_ptx.sh and commit the results; package
# kernel's TestCubinsAreUpToDate fails when they are not what this script
# makes of the committed PTX.
#
#   cuda/driver/kernel/build_cubins.sh [OUT_DIR]   (defaults to this directory)
set -euo pipefail

dir=$(cd "$(dirname "$0")" && pwd)
out=${1:-$dir}
ptxas=${PTXAS:-$(command -v ptxas || true)}
if [[ -z $ptxas ]]; then
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/ptxas.XXXXXX")
	trap 'rm -rf -- "$tmp"' EXIT
	ptxas=$("$dir/fetch_ptxas.sh" "$tmp")
fi
for arch in sm_80 sm_90; do
	# From the source directory with a relative input, so that nothing of
	# this checkout's path reaches the cubin.
	(cd "$dir" && "$ptxas" -arch="$arch" -O3 -o "$out/sha256_${arch/_/}.cubin" sha256.ptx)
done
