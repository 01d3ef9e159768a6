"""One SwAV training step of ResNet-50 on CPU: official fp32 vs facelib (channels_last, bf16 with AMX).

Batch: 8 images as 2 x 224 + 6 x 96 multi-crops (supplement 1.1) of synthetic faces, 2
threads. Baseline: the official step re-implemented in ``facelib.swav.reference`` (fp32,
contiguous, ``exp``-Sinkhorn loss, apex LARC around SGD). Ours: ``SwAVModel`` in channels_last
with the precision ``facelib.swav.train`` picks (bf16 autocast on CPUs with AMX, fp32 otherwise;
``--dtype bf16`` forces bf16), ``SwAVLoss``, ``LARS``.
Both start from the same weights and see the same batches with the recipe's first 20
learning rates; the losses must stay within 2 % of the fp32 run's at every step.

    .venv/bin/python benchmarks/bench_swav_step.py [--steps 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import numpy as np
import torch

from facelib import recipes
from facelib.data.synth import SynthFaces
from facelib.swav import reference
from facelib.swav.lars import LARS, param_groups
from facelib.swav.loss import SwAVLoss
from facelib.swav.model import SwAVModel
from facelib.swav.train import _amp_dtype
from facelib.swav.transforms import MultiCrop

TOLERANCE = 0.02  # relative loss difference allowed at every step


def _batches(recipe, n_batches: int, batch: int) -> list[list[torch.Tensor]]:
    faces = SynthFaces(n_batches * batch, seed=0, size=recipe.input_size)
    mc = MultiCrop.from_recipe(recipe)
    out = []
    for b in range(n_batches):
        samples = [mc(faces[b * batch + i][0], np.random.default_rng(b * batch + i)) for i in range(batch)]
        out.append([torch.stack([s[v] for s in samples]) for v in range(len(samples[0]))])
    return out


def _official(model, batches, lrs, recipe):
    opt = reference.LARC(torch.optim.SGD(model.parameters(), lr=lrs[0], momentum=0.9,
                                         weight_decay=recipe.weight_decay), trust_coefficient=0.001, clip=False)
    losses, times = [], []
    for it, lr in enumerate(lrs):
        crops = batches[it % len(batches)]
        t = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr
        model.normalize_prototypes()
        _, output = reference.official_forward(model, crops)
        loss = reference.swav_loss(output, crops[0].shape[0], recipe.nmb_crops)
        opt.zero_grad()
        loss.backward()
        if it < recipe.freeze_prototypes_iters:
            model.prototypes.weight.grad = None
        opt.step()
        times.append(time.perf_counter() - t)
        losses.append(float(loss.detach()))
    return losses, times


def _ours(model, batches, lrs, recipe, dtype):
    fmt = torch.channels_last
    model = model.to(memory_format=fmt)
    crit = SwAVLoss.from_recipe(recipe)
    opt = LARS(param_groups(model), lr=lrs[0], momentum=recipe.momentum, weight_decay=recipe.weight_decay,
               trust_coefficient=recipe.lars_trust_coefficient)
    losses, times = [], []
    for it, lr in enumerate(lrs):
        crops = [c.to(memory_format=fmt) for c in batches[it % len(batches)]]
        t = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr
        model.normalize_prototypes()
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            emb, scores = model(crops)
        loss = crit(emb.float(), scores.float(), model.prototypes.weight).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if it < recipe.freeze_prototypes_iters:
            model.prototypes.weight.grad = None
        opt.step()
        times.append(time.perf_counter() - t)
        losses.append(float(loss.detach()))
    return losses, times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--dtype", choices=("auto", "bf16", "fp32"), default="auto")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    recipe = recipes.pretrain("paper")
    dtype = {"auto": _amp_dtype("auto", torch.device("cpu"), recipe.mixed_precision),
             "bf16": torch.bfloat16, "fp32": None}[args.dtype]
    batches = _batches(recipe, 4, args.batch)
    lrs = [float(x) for x in recipes.lr_schedule(recipe, 1000)[: args.steps]]
    torch.manual_seed(0)
    base = SwAVModel.from_recipe(recipe).train()
    ref_losses, ref_times = _official(copy.deepcopy(base), batches, lrs, recipe)
    our_losses, our_times = _ours(copy.deepcopy(base), batches, lrs, recipe, dtype)
    t_ref, t_ours = float(np.median(ref_times[1:])), float(np.median(our_times[1:]))
    rel = np.abs(np.array(our_losses) - np.array(ref_losses)) / np.array(ref_losses)
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min), threads: {args.threads}, "
          f"mixed precision: {dtype}")
    print(f"ResNet-50, batch {args.batch} x (2x224 + 6x96), {args.steps} steps, median step time")
    print(f"official fp32          : {t_ref:6.2f} s/step  ({args.batch / t_ref:5.2f} images/s)")
    print(f"facelib {str(dtype or 'fp32').replace('torch.', ''):8s} + NHWC : {t_ours:6.2f} s/step  ({args.batch / t_ours:5.2f} images/s)")
    print(f"throughput ratio (goal >= 2.0): {t_ref / t_ours:.2f}x")
    print("losses fp32 :", " ".join(f"{x:.4f}" for x in ref_losses))
    print("losses ours :", " ".join(f"{x:.4f}" for x in our_losses))
    ok = bool((rel <= TOLERANCE).all())
    print(f"max relative loss difference: {rel.max():.4f} (tolerance {TOLERANCE}): {'ok' if ok else 'EXCEEDED'}")


if __name__ == "__main__":
    main()
