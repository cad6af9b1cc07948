#!/bin/sh
# make.sh: build, run and test vramseal with the compiler flags it needs.
#
#   ./make.sh build        build bin/vramseal
#   ./make.sh run ARGS...  build bin/vramseal, then run "bin/vramseal run ARGS..."
#   ./make.sh test         the whole test suite, exactly as CI (.ci/run) runs it
#
# Why a POSIX sh script and not a Makefile: a fresh machine with only Go and
# gcc has /bin/sh but not always make, and the one thing to share is the
# environment below.
#
# go-nvml's C header marks some NVML functions deprecated, so every cgo build
# of it prints those warnings. Setting CGO_CFLAGS replaces cgo's default
# "-O2 -g", so the defaults are kept (or yours, if CGO_CFLAGS is set) and only
# that one warning is turned off; every other warning stays visible.
set -eu
cd "$(dirname "$0")"
CGO_CFLAGS="${CGO_CFLAGS:--O2 -g} -Wno-deprecated-declarations"
export CGO_CFLAGS

build() {
	go build -o bin/vramseal ./cmd/vramseal
}

case "${1:-}" in
build)
	build
	;;
run)
	shift
	build
	exec bin/vramseal run "$@"
	;;
test)
	exec go test -race -count=1 ./...
	;;
*)
	echo "usage: ./make.sh build | run [vramseal run flags...] | test" >&2
	exit 2
	;;
esac
