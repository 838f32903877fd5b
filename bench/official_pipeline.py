#!/usr/bin/env python3
"""Run the authors' whole GPEN path and gpen-studio's on the same photos, faces and weights, one
after the other, and print both times per stage and how far apart their pixels are.

Both sides are timed as a user meets them: one process per case, from its start to its last result
written (imports and model loading included), its wall-clock time.

The authors' side is a Python process (this script again, as a child) that imports
`FaceEnhancement` from a checkout of https://github.com/yangxy/GPEN that you point it at (nothing is
downloaded), builds it as their `demo.py --task FaceEnhancement` does (RetinaFace-R50, GPEN-BFR-512,
ParseNet-latest and, with SR, RealESRNet ×2, on the CPU) and reads, processes and writes every
photo as the demo does (`cv2.imread`, `process`, `cv2.imwrite` to PNG). Each network's call is
timed by wrapping the object's method (their files are not edited); "align + paste" is the rest of
`process` (alignment warps, blur, paste).

Our side is one `gpen-studio restore` process per case with the same weight files, detector, mask,
strength and SR, `--gpen-exact` with SR (their output size, with its extra row and column), and
`--report` for our per-stage times (busy time, summed over our stage threads).

Weights: `--weights-dir` holds the authors' files under their names (RetinaFace-R50.pth,
GPEN-BFR-512.pth, ParseNet-latest.pth, realesrnet_x2.pth). Without the released files,
`--make-placeholder-weights` first writes seeded random weights of the released shapes there,
from the authors' own classes: speed does not depend on the values, and both sides still run
identical weights, so the pixel difference still measures the two implementations. Random
RetinaFace weights find no real faces, so give `--faces` then (e.g. the MTCNN golden,
../shared/golden/mtcnn/detections.json): both sides use those faces instead of detecting (theirs
through a stand-in for `facedetector.detect`, ours through `restore --faces`), and the detector's
time is left out of both; `gpen-studio bench face-path --retinaface FILE` times the detectors.

Faces scoring under the authors' threshold (0.9) are dropped from a `--faces` file for both sides.

Example (this repository's set-up; a GPEN checkout in /tmp/gpen; a Python with numpy,
opencv-python-headless and torchvision beside the torch of the set-up):

    PYTHONPATH=.libtorch/site python3 bench/official_pipeline.py --gpen-dir /tmp/gpen \\
        --weights-dir /tmp/gpen-weights --make-placeholder-weights \\
        --faces ../shared/golden/mtcnn/detections.json --modes nosr,sr --folder
"""

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

FILES = {
    "detector": "RetinaFace-R50.pth",
    "gpen": "GPEN-BFR-512.pth",
    "parser": "ParseNet-latest.pth",
    "sr": "realesrnet_x2.pth",
}
THRESHOLD = 0.9  # FaceEnhancement.threshold


def parse_args(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    shared = os.path.join(os.path.dirname(repo), "shared", "photos")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gpen-dir", required=True, metavar="DIR", help="a checkout of yangxy/GPEN")
    p.add_argument("--weights-dir", required=True, metavar="DIR",
                   help="the folder with " + ", ".join(FILES.values()))
    p.add_argument("--make-placeholder-weights", action="store_true",
                   help="first write seeded random weights of the released shapes into --weights-dir")
    p.add_argument("--ours", default=os.path.join(repo, "target", "release", "gpen-studio"), metavar="EXE",
                   help="the gpen-studio binary; default: target/release/gpen-studio")
    p.add_argument("--photos", nargs="+", metavar="IMAGE",
                   default=[os.path.join(shared, "astronaut.png"), os.path.join(shared, "solvay_1927.png")])
    p.add_argument("--modes", default="nosr,sr", help="nosr, sr or both (comma separated); default both")
    p.add_argument("--folder", action="store_true",
                   help="run all photos as one folder (one FaceEnhancement object, one restore command) "
                        "instead of one photo at a time")
    p.add_argument("--faces", metavar="FILE", help="faces to use instead of detecting (`detect --json` layout)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for both (torch.set_num_threads, --threads); default: each one's choice")
    p.add_argument("--out", metavar="DIR", help="where both sides write (default: a temporary folder)")
    p.add_argument("--seed", type=int, default=0, help="seed of the placeholder weights; default 0")
    p.add_argument("--authors-child", metavar="JSON", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not args.modes or any(m not in ("nosr", "sr") for m in args.modes):
        p.error("--modes: nosr, sr or nosr,sr")
    if not os.path.isfile(os.path.join(args.gpen_dir, "face_enhancement.py")):
        p.error(f"--gpen-dir: {args.gpen_dir}/face_enhancement.py not found (give a checkout of yangxy/GPEN)")
    if not os.access(args.ours, os.X_OK):
        p.error(f"--ours: {args.ours} is not an executable (build it with cargo build --release)")
    for photo in args.photos:
        if not os.path.isfile(photo):
            p.error(f"--photos: {photo} not found")
    return args


def import_authors(gpen_dir, torch):
    """The authors' modules, with their CPU fallback ops (no CUDA extension is compiled)."""
    gpen_dir = os.path.abspath(gpen_dir)
    sys.path.insert(0, gpen_dir)
    real_is_available = torch.cuda.is_available
    torch.cuda.is_available = lambda: False
    try:
        import __init_paths  # noqa: F401  (their own path set-up)
        fe = importlib.import_module("face_enhancement")
    finally:
        torch.cuda.is_available = real_is_available
    return fe


def make_placeholder_weights(weights_dir, seed, torch):
    """Seeded random weights of the released shapes, from the authors' classes (their own init)."""
    from facemodels.retinaface import RetinaFace
    from data import cfg_re50
    from gpen_model import FullGenerator
    from parse_model import ParseNet
    from rrdbnet_arch import RRDBNet

    os.makedirs(weights_dir, exist_ok=True)
    torch.manual_seed(seed)
    nets = {
        "detector": RetinaFace(cfg=cfg_re50, phase="test"),
        "gpen": FullGenerator(512, 512, 8, 2, narrow=1, device="cpu"),
        "parser": ParseNet(512, 512, 32, 64, 19, norm_type="bn", relu_type="LeakyReLU", ch_range=[32, 256]),
        "sr": RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=32, num_block=23, num_grow_ch=32, scale=2),
    }
    for role, net in nets.items():
        state = net.state_dict()
        torch.save({"params_ema": state} if role == "sr" else state, os.path.join(weights_dir, FILES[role]))
    print(f"placeholder weights (seed {seed}, released shapes) written to {weights_dir}", flush=True)


def read_faces(path, photos):
    """{file name: faces} for `photos`, faces under the threshold dropped."""
    with open(path) as f:
        entries = json.load(f)
    given = {}
    for photo in photos:
        name = os.path.basename(photo)
        entry = entries.get(photo) or entries.get(name)
        faces = entry["faces"] if entry else []
        given[name] = [face for face in faces if face["score"] >= THRESHOLD]
    return given


class Timer:
    """Seconds per stage, summed over calls."""

    def __init__(self):
        self.seconds = {}

    def add(self, stage, seconds):
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def wrap(self, stage, fn):
        def timed(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.add(stage, time.perf_counter() - start)
        return timed


def run_authors(args, mode, photos, faces_file, out_dir):
    """The authors' side in a process of its own: its wall time and its stage times."""
    job = json.dumps({"mode": mode, "photos": photos, "faces": faces_file, "out": out_dir})
    cmd = [sys.executable, os.path.abspath(__file__), "--gpen-dir", args.gpen_dir, "--weights-dir", args.weights_dir,
           "--ours", args.ours, "--authors-child", job]
    wall, done = timed_run(cmd, args.threads, "the authors' side")
    return wall, json.loads(done.stdout.strip().splitlines()[-1])


def timed_run(cmd, threads, who):
    """Runs `cmd` (with `--threads` when set) as a process of its own: its wall time and its output;
    a failure ends the benchmark, naming `who` and the command."""
    if threads:
        cmd = cmd + ["--threads", str(threads)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{who} failed ({done.returncode}): {' '.join(cmd)}\n{done.stdout}{done.stderr}")
    return wall, done


def authors_child(args):
    """The child: import, build, read + process + write every photo; print the stage times."""
    job = json.loads(args.authors_child)
    import warnings

    warnings.filterwarnings("ignore")
    import torch
    import numpy as np
    import cv2

    if args.threads:
        torch.set_num_threads(max(1, args.threads))
        cv2.setNumThreads(max(1, args.threads))
    fe_module = import_authors(args.gpen_dir, torch)
    given = read_faces(job["faces"], job["photos"]) if job["faces"] else None
    timer = Timer()
    build_authors(fe_module, args, job["mode"], job["photos"], given, job["out"], timer, np, cv2)
    print(json.dumps(timer.seconds))


def build_authors(fe_module, args, mode, photos, given, out_dir, timer, np, cv2):
    """FaceEnhancement as demo.py builds it; every photo read, processed and written as demo.py does."""
    use_sr = mode == "sr"
    base_dir = os.path.dirname(os.path.abspath(args.weights_dir.rstrip("/")))
    demo_args = argparse.Namespace(channel_multiplier=2, narrow=1, key=None, sr_model="realesrnet", sr_scale=2,
                                   tile_size=0, alpha=1)
    start = time.perf_counter()
    fe = fe_module.FaceEnhancement(demo_args, base_dir=base_dir, in_size=512, model="GPEN-BFR-512",
                                   use_sr=use_sr, device="cpu")
    timer.add("load", time.perf_counter() - start)
    fe.facegan.process = timer.wrap("restore (GPEN)", fe.facegan.process)
    fe.faceparser.process = timer.wrap("mask (parser)", fe.faceparser.process)
    fe.srmodel.process = timer.wrap("upscale", fe.srmodel.process)
    detect = fe.facedetector.detect
    current = {}
    if given is not None:
        scale = 2.0 if use_sr else 1.0

        def detect(img, *a, **k):  # the given faces, in the layout detect returns, at the SR size
            faces = given.get(current["name"], [])
            boxes = np.array([[*(v * scale for v in f["box"]), f["score"]] for f in faces], np.float32).reshape(-1, 5)
            landms = np.array([[p[0] * scale for p in f["landmarks"]] + [p[1] * scale for p in f["landmarks"]]
                               for f in faces], np.float32).reshape(-1, 10)
            return boxes, landms
    fe.facedetector.detect = timer.wrap("detect", detect)
    for photo in photos:
        current["name"] = os.path.basename(photo)
        t = time.perf_counter()
        img = cv2.imread(photo, cv2.IMREAD_COLOR)
        timer.add("decode", time.perf_counter() - t)
        t = time.perf_counter()
        result, _, _ = fe.process(img)
        timer.add("process", time.perf_counter() - t)
        t = time.perf_counter()
        cv2.imwrite(os.path.join(out_dir, os.path.splitext(os.path.basename(photo))[0] + ".png"), result)
        timer.add("encode", time.perf_counter() - t)


def run_ours(args, mode, photos, faces_file, out_dir):
    """One restore process; its wall time and its report's stage times."""
    w = lambda role: os.path.join(args.weights_dir, FILES[role])  # noqa: E731
    report = os.path.join(out_dir, "report.json")
    cmd = [args.ours, "restore", *photos, "-o", out_dir, "--overwrite", "-q", "--device", "cpu",
           "--weights", w("gpen"), "--detector", "retinaface", "--detector-weights", w("detector"),
           "--mask", "parser", "--parser-weights", w("parser"), "--strength", "1", "--report", report]
    if mode == "sr":
        cmd += ["--upscale", "2", "--sr-weights", w("sr"), "--gpen-exact"]
    if faces_file:
        cmd += ["--faces", faces_file]
    wall, _ = timed_run(cmd, args.threads, "gpen-studio")
    with open(report) as f:
        stages = json.load(f).get("stage_seconds", {})
    return wall, stages


def pixel_difference(a_path, b_path, np, cv2):
    a, b = cv2.imread(a_path, cv2.IMREAD_COLOR), cv2.imread(b_path, cv2.IMREAD_COLOR)
    if a is None or b is None:
        return "a result is missing"
    if a.shape != b.shape:
        return f"sizes differ: {a.shape[1]}x{a.shape[0]} against {b.shape[1]}x{b.shape[0]}"
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return (f"mean {d.mean():.3f} levels, 99.9th percentile {np.percentile(d, 99.9):.0f}, "
            f"{100.0 * (d > 1).mean():.3f} % of values > 1 level, max {d.max()}")


def main(argv=None):
    args = parse_args(argv)
    if args.authors_child:
        return authors_child(args)
    import warnings

    warnings.filterwarnings("ignore")
    import torch
    import numpy as np
    import cv2

    if args.threads:
        torch.set_num_threads(max(1, args.threads))
    if args.make_placeholder_weights:
        import_authors(args.gpen_dir, torch)
        make_placeholder_weights(args.weights_dir, args.seed, torch)
    missing = [f for f in FILES.values() if not os.path.isfile(os.path.join(args.weights_dir, f))]
    if missing:
        sys.exit(f"--weights-dir {args.weights_dir} lacks {', '.join(missing)} (or give --make-placeholder-weights)")
    if os.path.basename(os.path.normpath(args.weights_dir)) != "weights":
        # The authors' loaders read BASE/weights/NAME.pth: give them a BASE whose weights/ is ours.
        base = tempfile.mkdtemp(prefix="gpen-base-")
        os.symlink(os.path.abspath(args.weights_dir), os.path.join(base, "weights"))
        args.weights_dir = os.path.join(base, "weights")
    out = args.out or tempfile.mkdtemp(prefix="official-vs-ours-")
    given = read_faces(args.faces, args.photos) if args.faces else None
    faces_file = None
    if given is not None:
        faces_file = os.path.join(out, "faces.json")
        os.makedirs(out, exist_ok=True)
        with open(faces_file, "w") as f:
            json.dump({name: {"faces": faces} for name, faces in given.items()}, f)
    version = subprocess.run([args.ours, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"authors: yangxy/GPEN FaceEnhancement.process, PyTorch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, OpenCV {cv2.__version__}; ours: {version}", flush=True)
    print(f"faces: {'given (' + args.faces + '), no detection on either side' if given is not None else 'detected'}"
          f"; weights: {args.weights_dir}", flush=True)

    batches = [args.photos] if args.folder else [[p] for p in args.photos]
    for mode in args.modes:
        for photos in batches:
            what = "folder of " + str(len(photos)) if args.folder else os.path.basename(photos[0])
            faces = sum(len(given.get(os.path.basename(p), [])) for p in photos) if given is not None else "?"
            case = f"{mode}-{'folder' if args.folder else os.path.splitext(os.path.basename(photos[0]))[0]}"
            theirs_dir, ours_dir = os.path.join(out, case, "authors"), os.path.join(out, case, "ours")
            for d in (theirs_dir, ours_dir):
                shutil.rmtree(d, ignore_errors=True)
                os.makedirs(d)
            theirs, t = run_authors(args, mode, photos, faces_file, theirs_dir)
            ours, stages = run_ours(args, mode, photos, faces_file, ours_dir)
            print(f"\n== {what}, {'with' if mode == 'sr' else 'without'} SR, {faces} faces ==")
            other = t.get("process", 0.0) - sum(t.get(s, 0.0) for s in ("detect", "restore (GPEN)", "mask (parser)", "upscale"))
            rows = [("decode", t.get("decode", 0.0), stages.get("decode")),
                    ("upscale", t.get("upscale", 0.0), stages.get("upscale")),
                    ("detect", t.get("detect", 0.0), stages.get("detect")),
                    ("restore (GPEN)", t.get("restore (GPEN)", 0.0), stages.get("restore")),
                    ("mask (parser)", t.get("mask (parser)", 0.0), stages.get("mask")),
                    ("align + paste (authors: the rest of process)", other,
                     (stages.get("align") or 0.0) + (stages.get("paste") or 0.0)),
                    ("encode", t.get("encode", 0.0), stages.get("encode"))]
            print(f"{'stage (s)':<46} {'authors':>9} {'ours':>9}")
            for name, a, b in rows:
                print(f"{name:<46} {a:>9.2f} {('%9.2f' % b) if b is not None else '        -'}")
            print(f"{'models built (authors)':<46} {t.get('load', 0.0):>9.2f} {'':>9}")
            print(f"{'wall: the whole process':<46} {theirs:>9.2f} {ours:>9.2f}   "
                  f"ours = {ours / theirs:.3f} of theirs ({theirs / ours:.2f}x)")
            for photo in photos:
                name = os.path.splitext(os.path.basename(photo))[0] + ".png"
                diff = pixel_difference(os.path.join(theirs_dir, name), os.path.join(ours_dir, name), np, cv2)
                print(f"pixels {name}: {diff}")
            sys.stdout.flush()
    print(f"\nresults in {out}")


if __name__ == "__main__":
    main()
