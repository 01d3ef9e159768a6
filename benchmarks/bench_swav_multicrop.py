"""Multi-crop throughput per core: facelib's OpenCV pipeline vs the official PIL pipeline.

Both turn one decoded 256x256 face crop into the paper's 2 x 224 + 6 x 96 normalised crops
(supplement 1.1) on one thread. The baseline is ``facelib.swav.reference.official_multicrop``,
a faithful copy of SwAV's ``MultiCropDataset`` transforms (PIL + torchvision + cv2 blur).
Images: synthetic faces rendered at 256 px (``facelib.data.synth``). Goal: ratio >= 2.

    .venv/bin/python benchmarks/bench_swav_multicrop.py [--images 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

import cv2
import numpy as np
import torch
from PIL import Image

from facelib import recipes
from facelib.data.synth import SynthFaces
from facelib.swav.reference import official_multicrop
from facelib.swav.transforms import MultiCrop


def _rate(fn, images, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for i, img in enumerate(images):
            fn(i, img)
        best = min(best, time.perf_counter() - t)
    return len(images) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    recipe = recipes.pretrain("paper")
    faces = SynthFaces(args.images, seed=0, size=recipe.input_size)
    images = [faces[i][0] for i in range(args.images)]
    ours = MultiCrop.from_recipe(recipe)
    official = official_multicrop(recipe.size_crops, recipe.nmb_crops, recipe.min_scale_crops,
                                  recipe.max_scale_crops)
    # Each side starts from the decoded array; the official one builds its PIL image per sample.
    ours_rate = _rate(lambda i, img: ours(img, np.random.default_rng(i)), images, args.repeats)
    off_rate = _rate(lambda i, img: official(Image.fromarray(img)), images, args.repeats)
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min), cores: {os.cpu_count()}")
    print(f"official PIL pipeline : {off_rate:7.1f} images/s per core")
    print(f"facelib OpenCV        : {ours_rate:7.1f} images/s per core")
    print(f"ratio (goal >= 2.0)   : {ours_rate / off_rate:.2f}x")


if __name__ == "__main__":
    main()
