"""The full SwAV training step on one GPU, fed by each multi-crop path: images/s (needs CUDA).

For each data path of ``recipes.Pretrain.augment_on`` ("loader": OpenCV multi-crop in the
DataLoader workers; "device": the workers decode and draw, the crops are made on the GPU) and
each number of loader workers, ``facelib.swav.train.train`` runs one epoch of the paper recipe
(ResNet-50, 2 x 224 + 6 x 96 crops, 3000 prototypes, LARS) with ``--batch`` images on one GPU
(train's GPU defaults: bf16 autocast, channels_last, no compile) on JPEG synthetic faces of
256 px in HDF5 shards, read through ``storage.ShardDataset`` as the real shards are. Reported
per run: the median images/s of train's logged windows after the first (worker start-up and
cuDNN warm-up excluded). Also measured in the same run: the step alone on random crops already
on the GPU (the ceiling; ``bench_swav_gpu.py``'s "bf16 + channels_last" variant) and the GPU
time of ``DeviceMultiCrop`` per batch.

Prepared for a lent GPU: about 3-4 minutes on an H100/H200 with the defaults; writes
``$OUT/bench_swav_gpu_data.json`` (or ``--out``). ``--cpu-smoke`` runs a tiny version on the CPU
(to check the script, not to measure).

    python benchmarks/bench_swav_gpu_data.py [--batch 64] [--steps 30] [--workers 2 4 8 15]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facelib import recipes, storage  # noqa: E402
from facelib.data.synth_set import write_synth_set  # noqa: E402
from facelib.swav import train as swav_train  # noqa: E402
from facelib.swav.data import MultiCropDataset  # noqa: E402
from facelib.swav.device_multicrop import DeviceMultiCrop  # noqa: E402

HERE = Path(__file__).resolve().parent
UNIQUE_FACES = 512  # rendered once; the manifest repeats them (every item is still decoded)


def _sibling(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def shards(folder: Path, n: int, size: int) -> storage.ShardDataset:
    manifest = write_synth_set(folder, min(n, UNIQUE_FACES), seed=0, size=size, encoding="jpeg",
                               quality=recipes.crop().jpeg_quality, progress=False)
    rows = manifest.iloc[np.arange(n) % len(manifest)].reset_index(drop=True)
    return storage.ShardDataset(rows, folder)


def run_epoch(recipe: recipes.Pretrain, data: storage.ShardDataset, out: Path, device: str,
              workers: int, log_every: int) -> dict:
    t0 = time.perf_counter()
    swav_train.train(recipe, data, out, device=device, num_workers=workers, log_every=log_every,
                     progress=False)
    windows = [r["images_per_s"] for r in swav_train.read_log(out, "iter")][1:]
    return {"images_per_s": statistics.median(windows) if windows else float("nan"),
            "windows_images_per_s": windows, "wall_s": time.perf_counter() - t0}


def device_crop_time(recipe: recipes.Pretrain, data: storage.ShardDataset, batch: int, device: str,
                     reps: int = 20) -> float:
    """Seconds of ``DeviceMultiCrop`` per batch on ``device`` (median of ``reps``)."""
    from torch.utils.data import default_collate

    crops = DeviceMultiCrop.from_recipe(recipe)
    items = MultiCropDataset(data, crops.planner, seed=recipe.seed)  # type: ignore[arg-type]
    images, plans = default_collate([items[(0, i)] for i in range(batch)])
    images = images.to(device)
    times = []
    for _ in range(reps + 3):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        crops(images, plans)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times[3:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64, help="images per step (the paper: 4096 / 64 GPUs)")
    ap.add_argument("--steps", type=int, default=30, help="steps per run (the first log window is warm-up)")
    ap.add_argument("--workers", type=int, nargs="+", default=[2, 4, 8, 15], help="loader workers to try")
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "bench_swav_gpu_data.json"))
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny run on the CPU to check the script")
    args = ap.parse_args()
    overrides: dict = {}
    if args.cpu_smoke:
        device = "cpu"
        args.batch, args.steps, args.workers = 4, 4, [0]
        overrides = dict(arch="resnet18", size_crops=(64, 32), num_prototypes=30, hidden_mlp=64)
    elif not torch.cuda.is_available():
        sys.exit("bench_swav_gpu_data.py: CUDA is not available on this machine (try --cpu-smoke)")
    else:
        device = "cuda"
    n = args.batch * args.steps
    log_every = max(1, args.steps // 6)
    base = recipes.pretrain("paper", num_gpus=1, batch_size=args.batch, epochs=1, warmup_epochs=0,
                            train_images=n, **overrides)
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    report: dict = {"benchmark": "bench_swav_gpu_data", "date": _dt.date.today().isoformat(), "device": name,
                    "cpus": os.cpu_count(), "torch": torch.__version__, "batch_per_gpu": args.batch,
                    "steps": args.steps, "log_every": log_every, "runs": {}}
    print(f"{name}, {os.cpu_count()} CPUs, torch {torch.__version__}; batch {args.batch}, "
          f"{args.steps} steps per run", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = shards(Path(tmp) / "shards", n, base.input_size)
        if device == "cuda":
            gpu = _sibling("bench_swav_gpu")
            torch.backends.cudnn.benchmark = True
            torch.manual_seed(0)
            step = gpu.Step(gpu.SwAVModel.from_recipe(base), base, amp=True, channels_last=True, compile_=False)
            times, _, _ = gpu.time_steps(step, gpu.make_batches(base, args.batch), 5, 20)
            report["step_alone_images_per_s"] = args.batch / statistics.median(times)
            del step
            torch.backends.cudnn.benchmark = False  # as train() runs
            print(f"step alone (random crops on the GPU): {report['step_alone_images_per_s']:.0f} images/s",
                  flush=True)
        crop_s = device_crop_time(base, data, args.batch, device)
        report["device_crops_s_per_batch"] = crop_s
        print(f"DeviceMultiCrop: {crop_s * 1e3:.1f} ms per batch of {args.batch} "
              f"({args.batch / crop_s:.0f} images/s)", flush=True)
        for path in ("loader", "device"):
            recipe = recipes.override(base, augment_on=path)
            for w in args.workers:
                key = f"{path}, {w} workers"
                try:
                    res = run_epoch(recipe, data, Path(tmp) / key.replace(", ", "_").replace(" ", ""), device, w,
                                    log_every)
                except Exception as e:  # a failed run is reported, the others still run
                    res = {"error": f"{type(e).__name__}: {e}"}
                report["runs"][key] = res
                Path(args.out).write_text(json.dumps(report, indent=1))
                print(f"{key:22s} " + (f"{res['images_per_s']:8.0f} images/s  (run {res['wall_s']:.0f} s)"
                                       if "error" not in res else f"failed: {res['error'][:100]}"), flush=True)
    print("\nimages/s of the full step, by data path and loader workers")
    print(f"{'workers':>8s} {'loader (CPU)':>13s} {'device':>9s} {'device / CPU':>13s}")
    for w in args.workers:
        a = report["runs"].get(f"loader, {w} workers", {}).get("images_per_s", float("nan"))
        b = report["runs"].get(f"device, {w} workers", {}).get("images_per_s", float("nan"))
        print(f"{w:8d} {a:13.0f} {b:9.0f} {b / a:12.2f}x")
    if "step_alone_images_per_s" in report:
        print(f"ceiling (step alone on GPU-resident crops): {report['step_alone_images_per_s']:.0f} images/s")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
