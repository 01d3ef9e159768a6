"""The ResNet-50 SwAV training step on one GPU: images/s and model FLOP utilisation (MFU).

Per GPU the paper's batch is 64 samples (4096 over 64 GPUs, supplement 1.1), each as
2 x 224 + 6 x 96 multi-crops. One step = prototype re-normalisation, forward of every crop
(trunk once per resolution), the SwAV loss (Sinkhorn in fp32), backward and the LARS update,
exactly as ``facelib.swav.train`` does it. Inputs are random tensors already on the GPU
(rotating among four batches), so the figures are the model's, not the data loader's.

Variants, measured in one run on the same weights: fp32 (cuDNN's default TF32 convolutions),
bf16 autocast, bf16 autocast + channels_last, and the last with ``torch.compile`` on the
model. FLOPs per step are counted with ``torch.utils.flop_counter.FlopCounterMode`` on the
real step (forward + backward), not taken from a paper; MFU divides the achieved FLOP/s by
the datasheet's dense bf16 peak (989 TFLOP/s, H100/H200 SXM) and, in a second column, by an
8192^3 bf16 matrix product measured at the start of the same run.

    python benchmarks/bench_swav_gpu.py [--batch 64] [--steps 20] [--out results.json]

Needs CUDA; prints a table last. Figures measured on a lent H200 are kept in
``benchmarks/measured/bench_swav_gpu.json``.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facelib import recipes  # noqa: E402
from facelib.swav.lars import LARS, param_groups  # noqa: E402
from facelib.swav.loss import SwAVLoss  # noqa: E402
from facelib.swav.model import SwAVModel  # noqa: E402

DATASHEET_BF16_FLOPS = 989.4e12  # dense bf16, H100/H200 SXM datasheet


def matmul_ceiling(n: int = 8192, reps: int = 10) -> float:
    """bf16 FLOP/s of an n^3 matrix product on random data (mean of ``reps`` after 3 warm-ups)."""
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        a @ b
    end.record()
    torch.cuda.synchronize()
    return 2 * n**3 * reps / (start.elapsed_time(end) / 1e3)


def make_batches(recipe, batch: int, n: int = 4) -> list[list[torch.Tensor]]:
    g = torch.Generator(device="cuda").manual_seed(0)
    out = []
    for _ in range(n):
        crops = []
        for size, count in zip(recipe.size_crops, recipe.nmb_crops):
            crops += [torch.randn(batch, 3, size, size, device="cuda", generator=g) for _ in range(count)]
        out.append(crops)
    return out


class Step:
    """One SwAV training step with a given precision, memory format and compilation."""

    def __init__(self, base: SwAVModel, recipe, amp: bool, channels_last: bool, compile_: bool) -> None:
        self.model = copy.deepcopy(base).cuda().train()
        self.fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.model = self.model.to(memory_format=self.fmt)
        self.forward = torch.compile(self.model) if compile_ else self.model
        self.amp = amp
        self.crit = SwAVLoss.from_recipe(recipe).cuda()
        self.opt = LARS(param_groups(self.model), lr=0.3, momentum=recipe.momentum,
                        weight_decay=recipe.weight_decay, trust_coefficient=recipe.lars_trust_coefficient)

    def __call__(self, crops: list[torch.Tensor]) -> torch.Tensor:
        crops = [c.contiguous(memory_format=self.fmt) for c in crops]
        self.model.normalize_prototypes()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
            emb, scores = self.forward(crops)
        loss = self.crit(emb.float(), scores.float(), self.model.prototypes.weight).loss
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.detach()


def count_flops(step: Step, crops: list[torch.Tensor]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step(crops)
    torch.cuda.synchronize()
    return int(counter.get_total_flops())


def time_steps(step: Step, batches, warmup: int, steps: int) -> tuple[list[float], list[float], float]:
    t0 = time.perf_counter()
    for i in range(warmup):
        step(batches[i % len(batches)])
    torch.cuda.synchronize()
    warm_s = time.perf_counter() - t0
    times, losses = [], []
    for i in range(steps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        loss = step(batches[i % len(batches)])
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e) / 1e3)
        losses.append(float(loss))
    return times, losses, warm_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64, help="samples per GPU (the paper: 4096 / 64 GPUs)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--arch", default=None, help="override the recipe's ResNet (CPU dry runs)")
    ap.add_argument("--skip-compile", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "bench_swav_gpu.json"))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_swav_gpu.py: CUDA is not available on this machine")
    torch.backends.cudnn.benchmark = True
    recipe = recipes.pretrain("paper")
    if args.arch:
        recipe = recipes.override(recipe, arch=args.arch)
    props = torch.cuda.get_device_properties(0)
    report: dict = {"device": props.name, "date": datetime.date.today().isoformat(), "torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
                    "arch": recipe.arch, "batch_per_gpu": args.batch,
                    "crops": [list(recipe.size_crops), list(recipe.nmb_crops)],
                    "steps": args.steps, "warmup": args.warmup, "variants": {}}
    print(f"{props.name}, torch {torch.__version__}, cuDNN {report['cudnn']}", flush=True)
    ceiling = matmul_ceiling()
    report["matmul_bf16_flops"] = ceiling
    print(f"bf16 8192^3 matmul: {ceiling / 1e12:.0f} TFLOP/s", flush=True)

    torch.manual_seed(0)
    base = SwAVModel.from_recipe(recipe)
    batches = make_batches(recipe, args.batch)
    flops = count_flops(Step(base, recipe, amp=False, channels_last=False, compile_=False), batches[0])
    report["flops_per_step"] = flops
    print(f"FLOPs per step (forward + backward, counted): {flops / 1e12:.3f} TFLOP", flush=True)

    variants = [("fp32 (TF32 conv)", False, False, False), ("bf16", True, False, False),
                ("bf16 + channels_last", True, True, False)]
    if not args.skip_compile:
        variants.append(("bf16 + channels_last + compile", True, True, True))
    for name, amp, cl, comp in variants:
        try:
            step = Step(base, recipe, amp, cl, comp)
            times, losses, warm_s = time_steps(step, batches, args.warmup + (3 if comp else 0), args.steps)
        except Exception as e:  # a failed variant is reported, the others still run
            traceback.print_exc()
            report["variants"][name] = {"error": f"{type(e).__name__}: {e}"}
            continue
        med = statistics.median(times)
        rec = {"median_step_s": med, "images_per_s": args.batch / med, "achieved_flops": flops / med,
               "mfu_datasheet": flops / med / DATASHEET_BF16_FLOPS, "mfu_measured_matmul": flops / med / ceiling,
               "warmup_s": warm_s, "step_times_s": times, "losses": losses,
               "max_memory_gib": torch.cuda.max_memory_allocated() / 2**30}
        report["variants"][name] = rec
        torch.cuda.reset_peak_memory_stats()
        print(f"{name:32s} {med * 1e3:7.1f} ms/step  {rec['images_per_s']:7.0f} images/s  "
              f"MFU {rec['mfu_datasheet'] * 100:5.1f} %  (warm-up {warm_s:.1f} s)", flush=True)
        del step
        Path(args.out).write_text(json.dumps(report, indent=1))

    base_t = next((v["median_step_s"] for v in report["variants"].values() if "median_step_s" in v), None)
    print(f"\nResNet-50 SwAV step, {args.batch} samples/GPU (2x224 + 6x96), {flops / 1e12:.2f} TFLOP/step, "
          f"median of {args.steps} steps")
    print(f"{'variant':32s} {'ms/step':>8s} {'images/s':>9s} {'vs fp32':>8s} {'MFU(989)':>9s} {'MFU(meas)':>9s}")
    for name, v in report["variants"].items():
        if "error" in v:
            print(f"{name:32s} failed: {v['error'][:80]}")
            continue
        print(f"{name:32s} {v['median_step_s'] * 1e3:8.1f} {v['images_per_s']:9.0f} "
              f"{base_t / v['median_step_s']:7.2f}x {v['mfu_datasheet'] * 100:8.1f}% {v['mfu_measured_matmul'] * 100:8.1f}%")


if __name__ == "__main__":
    main()
