"""The demo's SwAV pretraining loop: images/s of this loop against the loop it replaced.

Both run ``facelib.swav.train.train`` with the demo recipe (``recipes.pretrain("demo")``) on
the same cached synthetic faces, for the same iterations, in this process:

* ``previous``: how the demo ran before: the multi-crop in the training process (no loader
  worker), the step on all cores;
* ``facelib``: one DataLoader worker makes the next batch's crops while the network trains on
  this one, on the other cores (``train`` sets torch's threads to cores - workers on the CPU).

Images/s are read from the run's own log (``images_per_s`` of the epochs after the first, which
renders and caches the faces); the ratio is ``facelib / previous``. Run it on an idle machine.

    .venv/bin/python benchmarks/bench_swav_demo_loop.py [--epochs 4] [--workers 1]
"""

from __future__ import annotations

import argparse
import tempfile

import torch

from facelib import recipes
from facelib.swav import train as T


def _rate(recipe: recipes.Pretrain, workers: int) -> float:
    data = T.DataSpec("synthetic").build(recipe)
    with tempfile.TemporaryDirectory() as out:
        T.train(recipe, data, out, num_workers=workers, progress=False)
        epochs = T.read_log(out, "epoch")[1:]
    return sum(e["images_per_s"] for e in epochs) / len(epochs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4, help="epochs per loop (the first is not counted)")
    ap.add_argument("--workers", type=int, default=1, help="loader workers of the new loop")
    args = ap.parse_args()
    recipe = recipes.pretrain("demo", epochs=args.epochs)
    print(f"demo recipe: {recipe.arch} width {recipe.width}, crops {recipe.nmb_crops} x {recipe.size_crops} px, "
          f"batch {recipe.batch_size}, {recipe.train_images} faces; torch threads {torch.get_num_threads()}")
    old = _rate(recipe, workers=0)
    new = _rate(recipe, workers=args.workers)
    print(f"previous loop (multi-crop in the training process, {torch.get_num_threads()} threads): {old:7.1f} images/s")
    print(f"facelib loop  ({args.workers} loader worker(s), the step on the other cores): {new:7.1f} images/s")
    print(f"ratio facelib / previous: {new / old:.2f}x")


if __name__ == "__main__":
    main()
