"""Sinkhorn-Knopp at the paper's size: facelib's vs the official algorithm.

B = 4096 samples, K = 3000 prototypes, 3 iterations, eps 0.05, scores of unit vectors (as
SwAV's), float32 on 2 threads. Baseline: ``facelib.swav.reference.distributed_sinkhorn``, the
official ``exp(scores / eps)`` + in-place rescaling. Goal: time ratio <= 1.0 and equal codes.

    .venv/bin/python benchmarks/bench_swav_sinkhorn.py [--threads 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F

from facelib.swav.reference import distributed_sinkhorn
from facelib.swav.sinkhorn import sinkhorn


def _time(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--prototypes", type=int, default=3000)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    z = F.normalize(torch.randn(args.batch, 128, generator=g), dim=1)
    c = F.normalize(torch.randn(args.prototypes, 128, generator=g), dim=1)
    scores = z @ c.t()
    t_ref = _time(lambda: distributed_sinkhorn(scores, 0.05, 3), args.repeats)
    t_ours = _time(lambda: sinkhorn(scores, 3, 0.05), args.repeats)
    diff = (sinkhorn(scores, 3, 0.05) - distributed_sinkhorn(scores, 0.05, 3)).abs().max().item()
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min), threads: {args.threads}")
    print(f"B={args.batch} K={args.prototypes} iters=3 eps=0.05")
    print(f"official : {t_ref * 1e3:7.1f} ms")
    print(f"facelib  : {t_ours * 1e3:7.1f} ms")
    print(f"time ratio (goal <= 1.0): {t_ours / t_ref:.2f}x   max |codes difference|: {diff:.1e}")


if __name__ == "__main__":
    main()
