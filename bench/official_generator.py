#!/usr/bin/env python3
"""Time the authors' GPEN generator on the CPU, for comparison with `gpen-studio bench generator`.

It imports `FullGenerator` from a checkout of https://github.com/yangxy/GPEN that you point it at
(nothing is downloaded), builds it with the given configuration and times its forward pass under
`torch.no_grad()`: one warm-up run, then `--repeat` timed runs for each batch size. The output lines
are the ones docs/BENCHMARKS.md quotes:

    batch=1 times_s=[3.6760, 3.5694, 3.6938] median_s_per_batch=3.6760 median_s_per_face=3.6760

The authors' code has two implementations of its two custom ops (`upfirdn2d` and the fused bias +
leaky ReLU, in `face_model/op/`): CUDA extensions, which `op/*.py` compile with
`torch.utils.cpp_extension.load` at import time when `torch.cuda.is_available()`, and plain PyTorch
fallbacks, which each op takes when CUDA is unavailable or the module was built with
`device='cpu'`. This script always measures the fallbacks: it builds the model with
`device='cpu'` and hides CUDA while `op` is imported, so nothing is compiled even on a GPU machine.

Weights are random (the authors' own initialisation, seeded) unless `--weights FILE` is given: the
time of a forward pass does not depend on the values.

Example (PyTorch from the repository's set-up, a GPEN checkout in /tmp/gpen):

    PYTHONPATH=.libtorch/site python3 bench/official_generator.py --gpen-dir /tmp/gpen \\
        --size 512 --channel-multiplier 2 --narrow 1 --batch 1,2 --repeat 3 --threads 2
"""

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gpen-dir", required=True, metavar="DIR",
                   help="a checkout of yangxy/GPEN (the folder that holds face_model/)")
    p.add_argument("--size", type=int, default=512, help="face size (256, 512, 1024, 2048); default 512")
    p.add_argument("--channel-multiplier", type=int, default=2, help="default 2 (GPEN-BFR-512)")
    p.add_argument("--narrow", type=float, default=1.0, help="default 1 (GPEN-BFR-512)")
    p.add_argument("--batch", default="1,2", metavar="N,...", help="batch sizes, comma separated; default 1,2")
    p.add_argument("--repeat", type=int, default=3, metavar="N",
                   help="timed runs per batch size after one warm-up; default 3")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch.set_num_threads(N); default: PyTorch's choice")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="a generator state dict (e.g. GPEN-BFR-512.pth); default: random weights")
    p.add_argument("--seed", type=int, default=0, help="seed for the random weights and inputs; default 0")
    args = p.parse_args(argv)
    try:
        args.batch = [int(b) for b in args.batch.split(",") if b.strip()]
    except ValueError:
        p.error(f"--batch: expected comma-separated integers, got {args.batch!r}")
    if not args.batch or min(args.batch) < 1:
        p.error("--batch: every batch size must be at least 1")
    if args.repeat < 1:
        p.error("--repeat: must be at least 1")
    model_dir = os.path.join(args.gpen_dir, "face_model")
    if not os.path.isfile(os.path.join(model_dir, "gpen_model.py")):
        p.error(f"--gpen-dir: {model_dir}/gpen_model.py not found (give a checkout of yangxy/GPEN)")
    return args


def import_full_generator(gpen_dir, torch):
    """Import the authors' FullGenerator with their CPU fallback ops (no extension is compiled)."""
    model_dir = os.path.abspath(os.path.join(gpen_dir, "face_model"))
    # gpen_model.py does `from op import ...`, so face_model/ must be on the path, as the authors'
    # own __init_paths.py arranges.
    sys.path.insert(0, model_dir)
    real_is_available = torch.cuda.is_available
    torch.cuda.is_available = lambda: False
    try:
        gpen_model = importlib.import_module("gpen_model")
    finally:
        torch.cuda.is_available = real_is_available
    return gpen_model.FullGenerator


def checkout_commit(gpen_dir):
    try:
        out = subprocess.run(["git", "-C", gpen_dir, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return "commit unknown (not a git checkout)"


def load_weights(model, path, torch):
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("g_ema", "params_ema", "state_dict"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    model.load_state_dict(state, strict=True)


def main(argv=None):
    args = parse_args(argv)
    import warnings

    # PyTorch warns at import when NumPy is absent; nothing here uses NumPy.
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    import torch

    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(args.seed)
    FullGenerator = import_full_generator(args.gpen_dir, torch)
    style_dim, n_mlp = 512, 8
    model = FullGenerator(args.size, style_dim, n_mlp, channel_multiplier=args.channel_multiplier,
                          narrow=args.narrow, device="cpu")
    if args.weights:
        load_weights(model, args.weights, torch)
    model.eval()

    narrow = f"{args.narrow:g}"
    print(f"official generator: yangxy/GPEN ({checkout_commit(args.gpen_dir)}) "
          f"FullGenerator({args.size}, {style_dim}, {n_mlp}, channel_multiplier={args.channel_multiplier}, "
          f"narrow={narrow}), CPU fallback ops, "
          f"{'weights from ' + args.weights if args.weights else 'random weights'}, fp32 on cpu, "
          f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"1 warm-up + {args.repeat} timed runs", flush=True)

    with torch.no_grad():
        for batch in args.batch:
            x = torch.rand(batch, 3, args.size, args.size) * 2 - 1
            model(x)  # warm-up
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - start)
            median = statistics.median(times)
            listed = ", ".join(f"{t:.4f}" for t in times)
            print(f"batch={batch} times_s=[{listed}] median_s_per_batch={median:.4f} "
                  f"median_s_per_face={median / batch:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
