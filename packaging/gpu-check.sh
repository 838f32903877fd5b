#!/usr/bin/env bash
# The one-call GPU check, for the GPU machine we can sometimes use (one NVIDIA GPU, PyTorch 2.11 from
# pip with its NVIDIA wheels, no Rust, no network). Run from the repository root with what was carried:
#   .torch211/gpen-studio   the binary from packaging/build-torch211.sh
#   models/mtcnn/*.pt       the MTCNN weights
#   .gpu/photos/            copies of ../shared/photos (astronaut.png, solvay_1927.png)
# It writes every output under OUTDIR and stays within about 8 minutes:
#   nvidia-smi.txt, nvml.csv (NVML readings every 0.5 s throughout), generator-fp32/fp16 (GPEN-512 at
#   batch 1…64), calibrate.txt, engine.txt (batching strategies beside a second process holding 60 % of
#   the free memory), pipeline.txt (large photos made on the spot, one thread against the stage workers).
#
#   packaging/gpu-check.sh OUTDIR               on the GPU machine
#   packaging/gpu-check.sh OUTDIR --cpu-smoke   here: the same steps on the CPU, small, to check the script
set -uo pipefail
out=${1:?usage: packaging/gpu-check.sh OUTDIR [--cpu-smoke]}
smoke=false
[ "${2:-}" = "--cpu-smoke" ] && smoke=true
cd "$(dirname "$0")/.."
mkdir -p "$out"
bin=${GPEN_BIN:-.torch211/gpen-studio}
photos=${GPEN_PHOTOS:-.gpu/photos}
log() { echo "== $(date -u +%T) $*" | tee -a "$out/steps.txt"; }

if $smoke; then
    device=cpu precision_list="fp32" batches=1 reps=1 synthetic=2 engine_photos=2 strategies=fixed:1,adaptive
    bin=${GPEN_BIN:-target/release/gpen-studio}
    # GPEN-512 on the CPU would take minutes for the photos' 30 faces: the golden 64 px model instead.
    pipeline_net=(--weights ../shared/golden/gpen-64/weights.pth)
else
    device=cuda precision_list="fp32 fp16" batches=1,2,4,8,16,32,64 reps=3 synthetic=24 engine_photos=32 strategies=fixed:64,adaptive
    pipeline_net=(--config bfr-512 --random-weights)
    # libtorch and its CUDA libraries from the machine's PyTorch: torch/lib and every nvidia/*/lib.
    libs=$(python3 - <<'PY'
import glob, os, torch
torch_lib = os.path.join(os.path.dirname(torch.__file__), "lib")
site = os.path.dirname(os.path.dirname(torch.__file__))
print(":".join([torch_lib] + sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib")))))
PY
    ) || { echo "gpu-check: python3 with torch is needed to find libtorch" >&2; exit 1; }
    export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
[ -x "$bin" ] || { echo "gpu-check: no binary at $bin (packaging/build-torch211.sh builds it)" >&2; exit 1; }
[ -f "$photos/astronaut.png" ] || { echo "gpu-check: no photos in $photos (copy ../shared/photos there)" >&2; exit 1; }
# Calibrations go to OUTDIR, not to a home folder that is thrown away; the MTCNN weights are the
# carried ones (the binary's built-in repository path is this machine's, not that one's).
export XDG_CONFIG_HOME="$out/config"
export GPEN_MTCNN_DIR="$PWD/models/mtcnn"

sampler=
if ! $smoke && command -v nvidia-smi >/dev/null; then
    nvidia-smi -q > "$out/nvidia-smi.txt" 2>&1
    nvidia-smi --query-gpu=timestamp,name,memory.total,memory.used,memory.free,utilization.gpu \
        --format=csv -lms 500 > "$out/nvml.csv" 2>&1 &
    sampler=$!
fi

log "libtorch and the device"
"$bin" --version > "$out/version.txt" 2>&1
"$bin" models list >> "$out/version.txt" 2>&1

for p in $precision_list; do
    log "bench generator $p"
    timeout 90 "$bin" bench generator --config bfr-512 --random-weights --device "$device" --precision "$p" \
        --batch "$batches" --repeat "$reps" --json "$out/generator-$p.json" > "$out/generator-$p.txt" 2>&1
done

log "calibrate"
timeout 60 "$bin" calibrate --config bfr-512 --random-weights --device "$device" > "$out/calibrate.txt" 2>&1

log "bench engine beside a competitor holding 60 % of the free memory"
competitor=
if ! $smoke; then
    python3 - > "$out/competitor.txt" 2>&1 <<'PY' &
import time, torch
free, total = torch.cuda.mem_get_info()
block = torch.empty(int(free * 0.6), dtype=torch.uint8, device="cuda")
print(f"competitor holds {block.numel() / 2**30:.1f} GiB of {total / 2**30:.1f} GiB", flush=True)
time.sleep(150)
PY
    competitor=$!
    sleep 8
fi
timeout 150 "$bin" bench engine --config bfr-512 --random-weights --device "$device" --synthetic "$engine_photos" \
    --face-source "$photos/astronaut.png" --strategies "$strategies" --memory-ratio 0.8 \
    --json "$out/engine.json" > "$out/engine.txt" 2>&1
[ -n "$competitor" ] && kill "$competitor" 2>/dev/null

log "bench pipeline on large photos"
timeout 150 "$bin" bench pipeline "${pipeline_net[@]}" --device "$device" --synthetic "$synthetic" \
    --synthetic-from "$photos/solvay_1927.png" "$photos/astronaut.png" --workers 1,auto \
    --json "$out/pipeline.json" > "$out/pipeline.txt" 2>&1

log "bench face-path: the parser folded against the authors' layers, by batch, and the detectors"
face_batches=1,4,8
$smoke && face_batches=1
timeout 90 "$bin" bench face-path --device "$device" --batch "$face_batches" --repeat "$reps" \
    --photos "$photos/solvay_1927.png" "$photos/astronaut.png" > "$out/face-path.txt" 2>&1

[ -n "$sampler" ] && kill "$sampler" 2>/dev/null
log "done"
for f in "$out"/*.txt; do echo "--- $f"; tail -n 12 "$f"; done
