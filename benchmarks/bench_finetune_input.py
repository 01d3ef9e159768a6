"""Input pipeline vs training step of each fine-tuning task (issue: data loading never starves the model).

For each task of the demo profile: samples/s of the input pipeline (render a synthetic face,
crop, augment, build the targets: one process) and samples/s of a training step (forward,
loss, backward, optimiser step) on the same batch size, and their ratio. A ratio above 1 means
one loader process keeps up with the model; below 1, add DataLoader workers (``--workers``).

    .venv/bin/python benchmarks/bench_finetune_input.py [--threads 1] [--n 64]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from facelib.data.synth import SynthFaces
from facelib.tasks import backbone as B
from facelib.tasks import finetune as FT


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=64, help="samples per measurement")
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--size", type=int, default=96, help="rendered face size")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = SynthFaces(args.n, seed=0, size=args.size, num_identities=8)
    print(f"{'task':12s} {'input/s':>9s} {'step/s':>9s} {'ratio':>7s}  (threads={args.threads}, profile={args.profile})")
    for name in FT.TASK_CLASSES:
        task = FT.make_task(name, args.profile, num_classes=8)
        ds = FT._Samples(data, task, np.arange(args.n), 0, 0)
        t0 = time.perf_counter()
        items = [ds[i] for i in range(args.n)]
        input_rate = args.n / (time.perf_counter() - t0)
        trunk, _ = B.build_trunk("resnet18" if args.profile == "demo" else "resnet50", "random")
        c, side = B.feature_shape(trunk, task.input_size)
        model = B.FaceModel(trunk, task.build_head(c, side))
        opt = FT._optimizer(task.recipe, model.parameters())
        bs = min(task.recipe.batch_size, args.n)
        batches = [torch.utils.data.default_collate(items[i:i + bs]) for i in range(0, args.n - bs + 1, bs)]
        x, t = batches[0]
        task.loss(model, model(x), t).backward()  # warm-up
        t0 = time.perf_counter()
        for x, t in batches:
            opt.zero_grad()
            task.loss(model, model(x), t).backward()
            opt.step()
        step_rate = len(batches) * bs / (time.perf_counter() - t0)
        print(f"{name:12s} {input_rate:9.1f} {step_rate:9.1f} {input_rate / step_rate:7.2f}")


if __name__ == "__main__":
    main()
