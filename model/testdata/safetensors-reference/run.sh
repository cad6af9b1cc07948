#!/bin/sh
# Builds the reference safetensors parser (huggingface/safetensors, the
# `safetensors` crate) offline against Debian's Rust packages and records its
# verdict on every file in corpus/ into verdicts.tsv, which
# TestSafetensorsAgreesWithReference reads. The reference's code is not
# committed: give its source as a git dir or a directory.
#
#   ./run.sh /path/to/huggingface-safetensors.git [TAG]
#
# Needs cargo and: apt-get install librust-serde-dev librust-serde-json-dev
# librust-hashbrown-dev (Debian bookworm: serde 1.0.152, serde_json 1.0.87).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=${1:?usage: run.sh SAFETENSORS_GIT_DIR_OR_CHECKOUT [TAG]}
tag=${2:-v0.8.0-rc.0}
build=$here/build
rm -rf "$build"
mkdir -p "$build/cargo-home"
if [ -d "$src/safetensors/src" ]; then
	cp -r "$src/safetensors" "$src/README.md" "$build/"
else
	git --git-dir="$src" archive "$tag" safetensors README.md | tar -x -C "$build"
fi
# Only the library is built: no benches, no dev-dependencies, and hashbrown
# (used only without std) at the version Debian ships.
python3 - "$build/safetensors/Cargo.toml" <<'PY'
import re, sys
p = sys.argv[1]
t = open(p).read()
t = re.sub(r'\n\[dev-dependencies\][^\[]*', '\n', t)
t = re.sub(r'\n\[\[bench\]\][^\[]*', '\n', t)
t = re.sub(r'hashbrown = \{ version = "[^"]*"', 'hashbrown = { version = "0.12"', t)
open(p, 'w').write(t)
PY
cat >"$build/cargo-home/config.toml" <<CFG
[source.debian]
directory = "/usr/share/cargo/registry"
[source.crates-io]
replace-with = "debian"
[net]
offline = true
CFG
export CARGO_HOME="$build/cargo-home"
cargo build --release --quiet --manifest-path "$here/driver/Cargo.toml" --target-dir "$build/target"
{
	printf '# verdicts of huggingface/safetensors %s (SafeTensors::deserialize), made by run.sh\n' "$tag"
	cd "$here/corpus"
	"$build/target/release/safetensors-verdict" $(ls | LC_ALL=C sort)
} >"$here/verdicts.tsv.new"
mv "$here/verdicts.tsv.new" "$here/verdicts.tsv"
rm -rf "$build" "$here/driver/Cargo.lock"
echo "wrote $here/verdicts.tsv"
