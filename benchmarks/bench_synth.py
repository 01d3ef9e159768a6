"""Throughput of the synthetic face renderer, per core (goal: >= 500 faces/s at 128x128).

Prints faces/s of :func:`facelib.data.synth.render` on one core (single-threaded, measured in
CPU time of the process so that other jobs on a shared machine do not count), its ratio to the
goal, and
its ratio to two baselines measured in the same run:

* ``cartoon``: a minimal face (an ellipse, two eyes, a mouth) drawn with a handful of OpenCV
  calls on a flat background, with no labels: the floor cost of drawing anything face-like;
* ``decode``: decoding a 128x128 JPEG from memory with PIL, what reading one real face crop
  from an HDF5 shard costs.

Usage: ``python benchmarks/bench_synth.py [--n 2000] [--size 128]``.
"""

from __future__ import annotations

import argparse
import io
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from facelib.data import synth  # noqa: E402

GOAL = 500.0


def _rate(fn, n: int) -> float:
    """Calls per second of CPU time of this process (other load on the machine does not count)."""
    fn(0)  # warm-up (imports, caches)
    t = time.process_time()
    for i in range(1, n + 1):
        fn(i)
    return n / max(time.process_time() - t, 1e-9)


def _cartoon(i: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    img = np.full((size, size, 3), rng.integers(0, 256, 3), np.uint8)
    c = (size // 2 + int(rng.integers(-8, 9)), size // 2 + int(rng.integers(-8, 9)))
    cv2.ellipse(img, c, (size // 4, size // 3), 0, 0, 360, (200, 170, 150), -1, cv2.LINE_AA)
    for dx in (-size // 10, size // 10):
        cv2.circle(img, (c[0] + dx, c[1] - size // 12), size // 30, (30, 30, 30), -1, cv2.LINE_AA)
    cv2.ellipse(img, (c[0], c[1] + size // 8), (size // 10, size // 30), 0, 0, 180, (150, 60, 60), 2, cv2.LINE_AA)
    return img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass

    buf = io.BytesIO()
    Image.fromarray(synth.render(0, size=args.size)[0]).save(buf, format="JPEG", quality=95)
    jpeg = buf.getvalue()

    def decode(i: int) -> np.ndarray:
        with Image.open(io.BytesIO(jpeg)) as im:
            return np.asarray(im.convert("RGB"))

    r_synth = _rate(lambda i: synth.render(i, seed=0, size=args.size), args.n)
    r_cartoon = _rate(lambda i: _cartoon(i, args.size), args.n)
    r_decode = _rate(decode, args.n)
    print(f"synthetic faces ({args.size}x{args.size}, labels included): {r_synth:8.0f} faces/s on one core")
    print(f"  vs goal {GOAL:.0f} faces/s:                ratio {r_synth / GOAL:5.2f}")
    print(f"  vs baseline 'cartoon' ({r_cartoon:6.0f}/s):     ratio {r_synth / r_cartoon:5.2f}")
    print(f"  vs baseline 'decode'  ({r_decode:6.0f}/s):     ratio {r_synth / r_decode:5.2f}")


if __name__ == "__main__":
    main()
