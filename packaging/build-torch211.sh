#!/usr/bin/env bash
# Builds gpen-studio against libtorch 2.11.0 — the PyTorch of the GPU machine we can sometimes use,
# where our own libtorch 2.13 cannot go (no network there, 64 MiB carried) — with tch/torch-sys 0.24,
# tch's release for libtorch 2.11. Everything lands in the ignored folder .torch211/: PyTorch 2.11.0
# from PyPI, a copy of the tracked sources with the two versions changed, its target folder, and the
# stripped binary .torch211/gpen-studio. The normal build (libtorch 2.13, `make`) is not touched.
#
#   packaging/build-torch211.sh          build the binary
#   packaging/build-torch211.sh --test   run the whole test suite against this build first
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/.torch211
run_tests=false
[ "${1:-}" = "--test" ] && run_tests=true
mkdir -p "$out"

# PyTorch 2.11.0 (its libtorch and the NVIDIA runtime wheels it links), moved into place when whole.
if [ ! -f "$out/installed-torch-2.11.0" ]; then
    rm -rf "$out/site.partial"
    python3 -m pip install --quiet --no-input --disable-pip-version-check --no-warn-script-location \
        --target "$out/site.partial" torch==2.11.0
    rm -rf "$out/site"
    mv "$out/site.partial" "$out/site"
    touch "$out/installed-torch-2.11.0"
fi

# The tracked sources as they are now, with tch 0.24 / torch-sys 0.24.
rm -rf "$out/src"
mkdir -p "$out/src"
git ls-files -z | xargs -0 cp --parents -t "$out/src"
sed -i -e 's/^tch = "0\.26"$/tch = "0.24"/' -e 's/^torch-sys = "0\.26"$/torch-sys = "0.24"/' "$out/src/Cargo.toml"
grep -q '^tch = "0.24"$' "$out/src/Cargo.toml" && grep -q '^torch-sys = "0.24"$' "$out/src/Cargo.toml" \
    || { echo "build-torch211: Cargo.toml no longer names tch/torch-sys 0.26 as expected" >&2; exit 1; }
# What the tests read beside the sources: the MTCNN weights, PyTorch for writing .pth fixtures, and
# ../shared (the copy's parent is .torch211, so ../shared is linked there).
mkdir -p "$out/src/models/mtcnn" "$out/src/.libtorch"
cp models/mtcnn/*.pt "$out/src/models/mtcnn/"
ln -sfn "$out/site" "$out/src/.libtorch/site"
ln -sfn "$root/../shared" "$out/shared"

cd "$out/src"
export LIBTORCH="$out/site/torch"
export CARGO_TARGET_DIR="$out/target"
cargo update --quiet -p tch -p torch-sys
if $run_tests; then
    cargo test --release --no-default-features
fi
# Without HEIC/AVIF reading (the `heif` feature): libheif's decoders are system libraries, and the GPU
# machine has only what is carried to it.
cargo build --release --no-default-features
# Stripped so it fits what can be carried to the GPU machine.
strip -o "$out/gpen-studio" "$CARGO_TARGET_DIR/release/gpen-studio"
ls -l "$out/gpen-studio"
echo "built $out/gpen-studio against libtorch 2.11.0 (tch 0.24)"
