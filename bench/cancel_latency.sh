#!/usr/bin/env bash
# How long a cancel takes during one photo's background super-resolution: `gpen-studio upscale` of
# one photo, whole (--tile 0), once to the end and once with Ctrl-C (SIGINT) AT seconds in; prints
# the whole run's time and the seconds from the signal to the process's exit, ROUNDS times.
#
#   bench/cancel_latency.sh [--sr-weights FILE] [--photo IMAGE] [--at S] [--rounds N]
#
# Without --sr-weights it writes seeded random weights of RealESRNet x2's released shapes (64
# features, 23 blocks; the time does not depend on the values) with the torch that `make` set up.
set -euo pipefail
cd "$(dirname "$0")/.."
weights= photo=../shared/photos/solvay_1927.png at=5 rounds=2
while [ $# -gt 0 ]; do
  case $1 in
    --sr-weights) weights=$2; shift 2 ;;
    --photo) photo=$2; shift 2 ;;
    --at) at=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
bin=target/release/gpen-studio
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT
if [ -z "$weights" ]; then
  weights=$scratch/esrnet_x2_placeholder.pth
  PYTHONPATH=.libtorch/site python3 - "$weights" <<'PY' 2>/dev/null
import sys, torch
torch.manual_seed(0)
nf, gc, sd = 64, 32, {}
def conv(name, cin, cout):
    sd[name + ".weight"] = torch.randn(cout, cin, 3, 3) * (0.1 / (cin * 9) ** 0.5)
    sd[name + ".bias"] = torch.zeros(cout)
conv("conv_first", 12, nf)  # x2: the pixel-unshuffle by 2 in front makes 12 input channels
for b in range(23):
    for r in (1, 2, 3):
        for k in range(5):
            conv(f"body.{b}.rdb{r}.conv{k + 1}", nf + k * gc, gc if k < 4 else nf)
for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
    conv(name, nf, nf)
conv("conv_last", nf, 3)
torch.save({"params_ema": sd}, sys.argv[1])
PY
  echo "placeholder RealESRNet x2 weights (seed 0, released shapes)"
fi
now() { date +%s.%N; }
echo "$(nproc) cores, $(date -u +%F), $photo, cancel at $at s"
for i in $(seq "$rounds"); do
  rm -rf "$scratch/out"; s=$(now)
  "$bin" upscale --sr-weights "$weights" --tile 0 --device cpu -q -o "$scratch/out" "$photo" >/dev/null 2>&1 || true
  echo "round $i: whole run $(echo "$(now) - $s" | bc) s"
  rm -rf "$scratch/out"
  "$bin" upscale --sr-weights "$weights" --tile 0 --device cpu -q -o "$scratch/out" "$photo" >/dev/null 2>&1 &
  pid=$!
  sleep "$at"; s=$(now); kill -INT "$pid"; rc=0; wait "$pid" || rc=$?
  echo "round $i: Ctrl-C at $at s -> exit $rc after $(echo "$(now) - $s" | bc) s, $(ls "$scratch/out" 2>/dev/null | wc -l) written"
done
