"""SwAV multi-crop on this CPU: the CPU path against the device path, same recipe, same batch.

What one DataLoader worker does per batch of the paper's recipe (2 x 224 + 6 x 96 crops,
``--batch`` images per GPU, 64 in the paper), on one core (OpenCV and torch limited to one
thread), reading JPEG-encoded 256 px synthetic faces from HDF5 shards through
``storage.ShardDataset`` as pretraining reads the real ones:

* CPU path (``recipes.Pretrain.augment_on = "loader"``): decode + ``MultiCrop`` per image + collate;
* device path (``"device"``): decode + ``CropPlanner`` (the random draws only) + collate; the
  crops are then made by ``DeviceMultiCrop`` on the training device, timed here on CPU tensors
  too (one thread: what a GPU does instead, at CPU speed).

Printed: images per CPU-second (per core) of each, decoding alone, and the ratios (loader cores saved; the
whole device path on one core against the CPU path). Results are written to
``benchmarks/measured/bench_swav_device_multicrop.json`` (read by ``facelib.cost``) unless
``--no-save``.

    .venv/bin/python benchmarks/bench_swav_device_multicrop.py [--images 256] [--batch 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import torch
from torch.utils.data import default_collate

from facelib import recipes, storage
from facelib.data.synth_set import write_synth_set
from facelib.swav.data import MultiCropDataset
from facelib.swav.device_multicrop import DeviceMultiCrop
from facelib.swav.transforms import MultiCrop

HERE = Path(__file__).resolve().parent


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    return f"{platform.machine()}, {cpu_model()}, {os.cpu_count()} CPUs"


def face_shards(folder: Path, n: int, size: int) -> Any:
    """``n`` synthetic faces of ``size`` px as JPEG (the recipe's quality) in HDF5 shards."""
    manifest = write_synth_set(folder, n, seed=0, size=size, encoding="jpeg",
                               quality=recipes.crop().jpeg_quality, progress=False)
    return storage.ShardDataset(manifest, folder)


def best_rate(fn: Callable[[], int], repeats: int) -> float:
    """Items per CPU-second of this process, fastest of ``repeats`` calls of ``fn`` (which returns
    its item count). CPU time, not wall-clock time: it stays meaningful on a shared machine."""
    best = float("inf")
    count = 0
    for _ in range(repeats):
        t = time.process_time()
        count = fn()
        best = min(best, time.process_time() - t)
    return count / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256, help="images per pass (whole batches)")
    ap.add_argument("--batch", type=int, default=64, help="images per batch (the paper: 4096 / 64 GPUs)")
    ap.add_argument("--repeats", type=int, default=3, help="best of N passes")
    ap.add_argument("--no-save", action="store_true", help="do not write benchmarks/measured/")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    recipe = recipes.pretrain("paper")
    n = max(args.batch, args.images // args.batch * args.batch)
    batches = [list(range(i, i + args.batch)) for i in range(0, n, args.batch)]
    device_crops = DeviceMultiCrop.from_recipe(recipe)
    with tempfile.TemporaryDirectory() as tmp:
        shards = face_shards(Path(tmp), n, recipe.input_size)
        cpu_items = MultiCropDataset(shards, MultiCrop.from_recipe(recipe), seed=recipe.seed)
        dev_items = MultiCropDataset(shards, device_crops.planner, seed=recipe.seed)  # type: ignore[arg-type]

        def loader(items: MultiCropDataset) -> Callable[[], int]:
            def run() -> int:
                for b in batches:
                    default_collate([items[(0, i)] for i in b])
                return n
            return run

        decode = best_rate(lambda: len([shards[i] for i in range(n)]), args.repeats)
        cpu_path = best_rate(loader(cpu_items), args.repeats)
        dev_loader = best_rate(loader(dev_items), args.repeats)
        collated = [default_collate([dev_items[(0, i)] for i in b]) for b in batches]

        def augment() -> int:
            for images, plans in collated:
                device_crops(images, plans)
            return n

        dev_augment = best_rate(augment, args.repeats)
    dev_one_core = 1.0 / (1.0 / dev_loader + 1.0 / dev_augment)
    print(f"{machine()}; load average {os.getloadavg()[0]:.2f} (1 min); torch {torch.__version__}")
    print("per core = per CPU-second of this process (one thread), which stays meaningful on a shared machine")
    print(f"paper recipe: {recipe.nmb_crops} crops of {recipe.size_crops} px from {recipe.input_size} px "
          f"JPEG faces in HDF5 shards; batches of {args.batch}; {n} images; best of {args.repeats}; one core each")
    print(f"decode only                          : {decode:8.1f} images/s")
    print(f"CPU path, loader (decode + MultiCrop): {cpu_path:8.1f} images/s per core")
    print(f"device path, loader (decode + draws) : {dev_loader:8.1f} images/s per core")
    print(f"device path, crops on CPU tensors    : {dev_augment:8.1f} images/s (one thread; a GPU's work)")
    print(f"ratio loader cores, CPU / device path: {dev_loader / cpu_path:.2f}x fewer cores for the device path")
    print(f"ratio whole path on one core, device / CPU: {dev_one_core / cpu_path:.2f}x")
    if not args.no_save:
        res = {"benchmark": "bench_swav_device_multicrop", "date": _dt.date.today().isoformat(),
               "machine": machine(), "torch": torch.__version__, "load_average": round(os.getloadavg()[0], 2),
               "recipe": "paper", "crops": [list(recipe.size_crops), list(recipe.nmb_crops)],
               "input_size": recipe.input_size, "batch": args.batch, "images": n, "repeats": args.repeats,
               "images_per_s_per_core": {
                   "decode": round(decode, 1),
                   "cpu_path_loader": round(cpu_path, 1),
                   "device_path_loader": round(dev_loader, 1),
                   "device_path_crops_on_cpu": round(dev_augment, 1),
                   "device_path_whole_on_cpu": round(dev_one_core, 1)},
               "ratio_loader_cores": round(dev_loader / cpu_path, 2),
               "ratio_whole_on_cpu": round(dev_one_core / cpu_path, 2)}
        dst = HERE / "measured" / "bench_swav_device_multicrop.json"
        tmp_dst = dst.with_suffix(".json.tmp")
        tmp_dst.write_text(json.dumps(res, indent=2) + "\n")
        os.replace(tmp_dst, dst)
        print(f"written: {dst.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
