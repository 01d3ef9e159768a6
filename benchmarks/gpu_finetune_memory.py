"""Peak GPU memory and step time of one fine-tuning step per task recipe, the whole batch on one GPU.

Backs the note of ``recipes.Launch.finetune_gpus_per_run`` (every paper-recipe run fits one
16 GB GPU). ResNet-50, fp32, random inputs, 4 steps; prints one line per task and a JSON
summary. Measured on a lent H200: ``benchmarks/measured/gpu_finetune_memory.json``.

    python benchmarks/gpu_finetune_memory.py [paper|demo] [batch fraction]
"""

from __future__ import annotations

import argparse
import datetime
import json
import time

import numpy as np
import torch

from facelib import recipes
from facelib.data.synth import SynthFaces
from facelib.tasks import backbone as B
from facelib.tasks import finetune as FT


def measure(name: str, profile: str, scale: float, dev: torch.device) -> dict[str, float | int]:
    """Peak memory (GiB, CUDA only) and best step time of one task's recipe step."""
    rec = recipes.task(name, profile)
    task = FT.make_task(name, profile, num_classes=8631 if name == "recognition" else 0)
    ds = SynthFaces(2, 0, 128, 2)
    _, target, _ = task.prepare(*ds[0], np.random.default_rng(0))
    bs = max(2, int(rec.batch_size * scale))
    trunk, _ = B.build_trunk(recipes.pretrain(profile).arch, "random", None, seed=0)
    ch, side = B.feature_shape(trunk, task.input_size)
    model = B.FaceModel(trunk, task.build_head(ch, side)).to(dev)
    opt = FT._optimizer(rec, model.parameters())
    x = torch.randn(bs, 3, task.input_size, task.input_size, device=dev)
    tgt = {k: torch.as_tensor(np.stack([np.asarray(v)] * bs)).to(dev) for k, v in target.items()}
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    times = []
    for _ in range(4):
        t0 = time.perf_counter()
        loss = task.loss(model, model(x), tgt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else float("nan")
    del model, opt, x, tgt, loss
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return {"batch": bs, "input": task.input_size, "paper_gpus": rec.num_gpus,
            "peak_gib": round(peak, 2), "step_s": round(min(times[1:]), 4),
            "images_per_s": round(bs / min(times[1:]), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile", nargs="?", default="paper", choices=recipes.PROFILES)
    ap.add_argument("scale", nargs="?", type=float, default=1.0, help="batch fraction (CPU smoke test)")
    args = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out = {}
    for name in recipes.TASKS:
        out[name] = measure(name, args.profile, args.scale, dev)
        print(name, out[name], flush=True)
    print(json.dumps({"device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
                      "date": datetime.date.today().isoformat(),
                      "torch": torch.__version__, **out}))


if __name__ == "__main__":
    main()
