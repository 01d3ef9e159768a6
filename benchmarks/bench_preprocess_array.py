"""Scaling of the preprocessing job array: 1 against 2 elements at a time, same files, same run.

``facelib preprocess SRC OUT --cluster`` cuts the file list into parts, one job-array element
each (:mod:`facelib.faces.array`). This submits the same generated photos (one astronaut face
each, composited at random scale and offset, ``tests/faces_fixtures.many_faces``, resized to
photo size: ``--side`` px on the long side) to a local
SLURM three ways and reports images/s from submission to the merged manifest:

* baseline: ``facelib.faces.preprocess.preprocess`` in this process (one detector process);
* array, at most 1 element at a time (``--cluster-set array_parallelism=1``);
* array, at most 2 elements at a time.

Each element asks one CPU (the ``slurm-local`` profile) and runs one detector process. Reported:
wall-clock images/s of each, the elements' own images/s (files / seconds inside the element,
without scheduling and start-up), and the ratio 2 / 1 elements (goal ~2 on an idle 2-core
machine; below it when the machine is shared). Rounds are interleaved; the best counts.

Usage::

    sudo python benchmarks/bench_preprocess_array.py [--images 128] [--part-size 32] [--side 1024] [--rounds 2]

It uses the cluster of ``$SLURM_CONF`` when set, else starts a private one with
``slurm/start.sh`` (root) and stops it at the end.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _free_port() -> int:
    for base in range(18817, 19800, 10):
        free = True
        for p in range(base, base + 6):
            with socket.socket() as s:
                free &= s.connect_ex(("127.0.0.1", p)) != 0
        if free:
            return base
    raise RuntimeError("no free ports for a local SLURM")


def _run_array(src: Path, out: Path, parallelism: int, part_size: int) -> tuple[float, float]:
    """(wall seconds from submission to the merged manifest, elements' images/s)."""
    from facelib import cli
    from facelib.faces import array

    t0 = time.perf_counter()
    rc = cli.main(["preprocess", str(src), str(out), "--cluster", "slurm-local", "--profile", "demo",
                   "--part-size", str(part_size), "--cluster-set", f"array_parallelism={parallelism}",
                   "--wait", "900"])
    wall = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError(f"the array run exited {rc}")
    done = [json.loads(p.read_text()) for p in sorted((out / array.ARRAY).glob("part-*/done.json"))]
    inside = sum(d["processed"] for d in done) / sum(d["seconds"] for d in done)
    return wall, inside


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=128)
    ap.add_argument("--part-size", type=int, default=32)
    ap.add_argument("--side", type=int, default=1024, help="long side of the generated photos (px)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO / "tests"))
    import cv2
    from faces_fixtures import many_faces

    from facelib.faces import preprocess as pp

    started = None
    if not os.environ.get("SLURM_CONF"):
        root = Path(f"/tmp/fl-bench-{os.getpid()}")
        env = {**os.environ, "SLURM_LOCAL_ROOT": str(root), "SLURM_LOCAL_PORT": str(_free_port())}
        subprocess.run(["bash", str(REPO / "slurm" / "start.sh")], env=env, check=True, timeout=300)
        os.environ["SLURM_CONF"] = str(root / "etc" / "slurm.conf")
        started = env
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "src"
            many_faces(src, args.images, seed=11)
            for path in src.iterdir():  # photo-sized: the face fills the frame of a 1024-px photo
                img = cv2.imread(str(path))
                k = args.side / max(img.shape[:2])
                cv2.imwrite(str(path), cv2.resize(img, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC),
                            [cv2.IMWRITE_JPEG_QUALITY, 90])
            best: dict[str, float] = {}
            inside: dict[str, float] = {}
            for r in range(args.rounds):
                out = Path(tmp) / f"local{r}"
                t0 = time.perf_counter()
                pp.preprocess(src, out, profile="demo", progress=False)
                best["local"] = max(best.get("local", 0.0), args.images / (time.perf_counter() - t0))
                for p in (1, 2):
                    wall, ips = _run_array(src, Path(tmp) / f"array{p}-{r}", p, args.part_size)
                    best[f"{p}"] = max(best.get(f"{p}", 0.0), args.images / wall)
                    inside[f"{p}"] = max(inside.get(f"{p}", 0.0), ips)
                    shutil.rmtree(Path(tmp) / f"array{p}-{r}")
    finally:
        if started is not None:
            subprocess.run(["bash", str(REPO / "slurm" / "stop.sh"), "--purge"], env=started, timeout=120)
    parts = -(-args.images // args.part_size)
    print(f"{args.images} photos of {args.side} px, {parts} parts of {args.part_size}, best of {args.rounds} round(s):")
    print(f"  baseline, preprocess() in this process: {best['local']:.2f} images/s")
    for p in (1, 2):
        print(f"  array, {p} element(s) at a time: {best[str(p)]:.2f} images/s from submission to merge "
              f"({inside[str(p)]:.2f} images/s inside the elements)")
    ratio = best["2"] / best["1"]
    print(f"  scaling 2 / 1 elements: {ratio:.2f}x (goal ~2 on an idle machine with 2 free cores)")
    if not args.no_save:
        res = {"benchmark": "bench_preprocess_array", "date": _dt.date.today().isoformat(),
               "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "images": args.images, "side": args.side,
               "part_size": args.part_size, "local_images_per_s": round(best["local"], 2),
               "array1_images_per_s": round(best["1"], 2), "array2_images_per_s": round(best["2"], 2),
               "array1_inside_images_per_s": round(inside["1"], 2),
               "array2_inside_images_per_s": round(inside["2"], 2), "scaling_2_over_1": round(ratio, 2)}
        dst = HERE / "measured" / "bench_preprocess_array.json"
        dst.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
