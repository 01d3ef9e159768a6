"""Demo supervised pretraining: its loader making only the large crops vs the full multi-crop.

The supervised baseline (``facelib.swav.supervised``) trains on the large crops alone; until
``large_crops_only`` its loader also made the 4 small crops, which the loss never sees. Both
runs train the demo recipe (page 03's: 4,096 synthetic faces of 40 px, batch 64, one loader
worker beside the step, as ``make book`` runs it) for ``--epochs`` epochs in a temporary folder;
the printed ratio is the images/s of the current loader over the full multi-crop's, measured in
the same run. Their crops, and so their trunks, are the same.

    .venv/bin/python benchmarks/bench_supervised_pretrain.py [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from facelib import recipes
from facelib.swav import train as swav_train
from facelib.swav.train import DataSpec, PretrainJob


def _run(out: Path, epochs: int, full_multicrop: bool) -> float:
    keep = swav_train.large_crops_only
    if full_multicrop:  # the baseline: every crop of the recipe made, only the large ones used
        swav_train.large_crops_only = lambda recipe: recipe
    try:
        recipe = recipes.pretrain("demo", method="supervised", epochs=epochs)
        start = time.perf_counter()
        PretrainJob(recipe, str(out), DataSpec("synthetic"), num_workers=1, progress=False)()
        wall = time.perf_counter() - start
    finally:
        swav_train.large_crops_only = keep
    rates = [json.loads(line)["images_per_s"] for line in (out / swav_train.LOG_NAME).read_text().splitlines()
             if '"kind": "epoch"' in line]
    print(f"  {'full multi-crop' if full_multicrop else 'large crops only'}: {wall:.1f} s, "
          f"images/s per epoch {', '.join(f'{r:.0f}' for r in rates)}")
    return sum(rates[1:]) / max(1, len(rates) - 1) if len(rates) > 1 else rates[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = _run(Path(tmp) / "full", args.epochs, True)
        new = _run(Path(tmp) / "large", args.epochs, False)
    print(f"supervised pretraining, images/s after the first epoch: {new:.0f} vs {base:.0f} "
          f"(full multi-crop): ratio {new / base:.2f}")


if __name__ == "__main__":
    main()
