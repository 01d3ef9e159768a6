"""Page 03's two demo pretrainings at once (``run_jobs``) against one after the other.

Page 03 pretrains the demo trunk twice, with SwAV and supervised on the persons' labels. Each
run trains on one torch thread beside one loader worker (as ``make book`` runs it). The
baseline runs the two jobs one after the other, as the page did. ``facelib.swav.train.run_jobs``
runs them in two processes at once, the supervised one niced so that SwAV, the longer, keeps
its pace. Both variants train the demo recipes for ``--epochs`` epochs in temporary folders,
and the trunks are compared. The printed ratio is the baseline's wall time over ``run_jobs``'s,
measured in the same run. Run it on an idle machine.

    .venv/bin/python benchmarks/bench_pretrain_at_once.py [--epochs 6]
"""

from __future__ import annotations

import argparse
import filecmp
import tempfile
import time
from pathlib import Path

from facelib import recipes
from facelib.swav import train as swav_train
from facelib.swav.train import TRUNK_NAME, DataSpec, PretrainJob

METHODS = ("SwAV", "supervised")  # page 03's order: the longer first


def _jobs(root: Path, epochs: int) -> list[PretrainJob]:
    return [PretrainJob(recipes.pretrain("demo", epochs=epochs, method=method), str(root / method),
                        DataSpec("synthetic"), num_workers=1, resume=False, progress=False)
            for method in METHODS]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=6, help="epochs of each pretraining (the demo's: 24)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        swav_train.run_jobs(_jobs(root / "one_after_the_other", args.epochs), processes=1)
        serial = time.perf_counter() - t0
        t0 = time.perf_counter()
        swav_train.run_jobs(_jobs(root / "at_once", args.epochs), processes=2)
        at_once = time.perf_counter() - t0
        same = all(filecmp.cmp(root / "one_after_the_other" / m / TRUNK_NAME, root / "at_once" / m / TRUNK_NAME,
                               shallow=False) for m in METHODS)
    print(f"demo SwAV + supervised pretraining, {args.epochs} epochs each, one loader worker each")
    print(f"one after the other: {serial:7.1f} s")
    print(f"at once (run_jobs):  {at_once:7.1f} s   trunks identical: {same}")
    print(f"ratio one after the other / at once: {serial / at_once:.2f}x")


if __name__ == "__main__":
    main()
