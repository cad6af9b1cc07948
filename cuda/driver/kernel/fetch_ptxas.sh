#!/usr/bin/env bash
# fetch_ptxas.sh puts NVIDIA's PTX assembler, ptxas, from Debian bookworm's
# nvidia-cuda-toolkit (CUDA 11.8, component non-free) in DIR and prints its
# path. It downloads the one package with apt-get download and unpacks only
# ptxas (a static binary): installing the package would pull in libcuda1 and
# libnvidia-ml1, a real driver library on a machine without a GPU, which the
# tests that expect no driver (or the stand-in libcuda) must not find.
# Needs root and apt-get; it enables non-free in a sources file of its own
# when no candidate is found. Nothing at run time needs ptxas: build_cubins.sh
# and the kernel package's tests do.
#
#   cuda/driver/kernel/fetch_ptxas.sh DIR
set -euo pipefail

dir=${1:?usage: fetch_ptxas.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [[ -x $dir/usr/bin/ptxas ]]; then
	echo "$dir/usr/bin/ptxas"
	exit 0
fi
command -v apt-get >/dev/null || { echo "fetch_ptxas.sh: no apt-get" >&2; exit 1; }
candidate() { apt-cache policy nvidia-cuda-toolkit 2>/dev/null | awk '/Candidate:/ { print $2 }'; }
if [[ $(candidate) == "" || $(candidate) == "(none)" ]]; then
	printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
		>/etc/apt/sources.list.d/vramseal-non-free.sources
	apt-get update -qq
fi
(cd "$dir" && apt-get download -qq nvidia-cuda-toolkit 2>/dev/null)
dpkg-deb --fsys-tarfile "$dir"/nvidia-cuda-toolkit_*.deb | tar -x -C "$dir" ./usr/bin/ptxas
rm -f -- "$dir"/nvidia-cuda-toolkit_*.deb
"$dir/usr/bin/ptxas" --version >/dev/null
echo "$dir/usr/bin/ptxas"
