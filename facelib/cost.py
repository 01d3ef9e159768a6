"""What rerunning the paper costs: measured per-item costs turned into time and resources.

Each figure is computed from a benchmark result in ``benchmarks/measured/`` (each file records
the machine and the date it was measured on) and from the sizes, epochs and limits in
:mod:`facelib.recipes`; nothing is typed in here. The steps:

* :func:`crawl`: the Flickr-Face crawl (search calls at the API rate limit, downloads at the
  recipe's rate limit or the measured throughput, whichever is lower);
* :func:`preprocess`: face detection and cropping, in CPU core-hours (images per CPU-second of
  ``benchmarks/bench_preprocess.py``) and wall-clock time on a cluster's array;
* :func:`pretrain`: SwAV for the recipe's epochs on each pretraining set, in GPU-hours (images/s
  per GPU of ``benchmarks/bench_swav_gpu.py``), with the data-loading cores per GPU that the
  measured multi-crop throughput implies for each path of ``recipes.Pretrain.augment_on``;
* :func:`finetune`: the grid of task x data regime x initialisation, from the per-task step
  times of ``benchmarks/gpu_finetune_memory.py``;
* :func:`summary`: the totals.

Shown in ``notebooks/10_cost.py``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from facelib import recipes

__all__ = [
    "MEASURED_DIR",
    "BENCHMARKS",
    "Source",
    "load",
    "load_all",
    "sources_table",
    "pretraining_sets",
    "finetune_sets",
    "measured_faces_per_photo",
    "crawl",
    "photos_to_download",
    "preprocess",
    "gpu_variants",
    "pretrain",
    "loader_cores",
    "finetune",
    "summary",
    "number",
]

#: Where the measured results live, relative to the repository root.
MEASURED_DIR = Path("benchmarks") / "measured"

#: Measured file -> the benchmark script that writes it.
BENCHMARKS = {
    "bench_flickr_crawl.json": "benchmarks/bench_flickr_crawl.py",
    "bench_preprocess.json": "benchmarks/bench_preprocess.py --save",
    "bench_swav_gpu.json": "benchmarks/bench_swav_gpu.py (on a GPU)",
    "bench_swav_device_multicrop.json": "benchmarks/bench_swav_device_multicrop.py",
    "gpu_finetune_memory.json": "benchmarks/gpu_finetune_memory.py (on a GPU)",
}

HOUR = 3600.0


@dataclass(frozen=True)
class Source:
    """One measured result: its data and where, on what and when it was measured."""

    file: str  # e.g. "benchmarks/measured/bench_swav_gpu.json"
    machine: str
    date: str
    data: dict[str, Any]

    @property
    def label(self) -> str:
        """``file (machine, date)``: what every figure derived from it cites."""
        return f"{self.file} ({self.machine}, {self.date})"


def load(folder: str | Path, name: str) -> Source:
    """Read ``folder/name`` (one of :data:`BENCHMARKS`).

    Raises:
        FileNotFoundError: the file is missing (the message names the benchmark that writes it).
        ValueError: it is not JSON or does not say where and when it was measured.
    """
    path = Path(folder) / name
    if not path.is_file():
        how = BENCHMARKS.get(name, "its benchmark")
        raise FileNotFoundError(f"{path}: no measured result; run {how} to make it")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from e
    machine = data.get("machine") or data.get("device")
    if not machine or not data.get("date"):
        raise ValueError(f"{path}: the result does not record its machine ('machine' or 'device') and 'date'")
    return Source(file=(MEASURED_DIR / name).as_posix(), machine=str(machine), date=str(data["date"]), data=data)


def load_all(folder: str | Path) -> dict[str, Source]:
    """Every file of :data:`BENCHMARKS`, keyed by file name."""
    return {name: load(folder, name) for name in BENCHMARKS}


def sources_table(sources: Mapping[str, Source]) -> pd.DataFrame:
    """One row per measured file: machine, date and the benchmark that writes it."""
    return pd.DataFrame([{"file": s.file, "machine": s.machine, "date": s.date, "written by": BENCHMARKS.get(name, "")}
                         for name, s in sources.items()]).set_index("file")


def number(value: float) -> str:
    """A figure for the page's tables: thousands separators, three significant digits below 100."""
    if value != value:  # NaN
        return "not measured"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _row(step: str, item: str, value: float, unit: str, how: str, source: str) -> dict[str, Any]:
    return {"step": step, "item": item, "value": value, "unit": unit, "how": how, "source": source}


# --------------------------------------------------------------------------------------------
# What is run: sizes from the recipes
# --------------------------------------------------------------------------------------------
def pretraining_sets(d: recipes.Datasets | None = None) -> dict[str, int]:
    """Images of each pretraining set (supplement 2 and 3)."""
    d = d or recipes.datasets()
    return {"Full VGG-Face": d.full_vggface_images, "Small VGG-Face": d.small_vggface_images,
            "Large-Scale-Face": d.large_scale_face_images, "Flickr-Face": d.flickr_face_faces}


def finetune_sets(d: recipes.Datasets | None = None) -> dict[str, tuple[str, int]]:
    """Task -> (training set, images at 100 %): the sets ``recipes.Datasets`` notes (not in the supplement)."""
    d = d or recipes.datasets()
    return {"recognition": ("VGGFace2 train", d.vggface2_train_images),
            "landmarks": ("300W train", d.w300_train_images),
            "au": ("DISFA (every frame)", d.disfa_subjects * d.disfa_frames_per_subject),
            "emotion": ("AffectNet train", d.affectnet_train_images),
            "recon3d": ("300W-LP", d.w300lp_images)}


# --------------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------------
def measured_faces_per_photo(preprocess_source: Source) -> float:
    """Faces per photo found by the preprocessing pipeline on the benchmark's photos."""
    run = preprocess_source.data["runs"]["pipeline:1"]
    return run["faces"] / run["images"]


def crawl(faces: int, faces_per_photo: float, flickr: recipes.Flickr, crawl_source: Source) -> pd.DataFrame:
    """The Flickr-Face crawl: photos to fetch, search calls and time, download time.

    Search calls are a lower bound: one per ``per_page`` photos plus one count query per
    upload-date window of at most ``result_cap`` photos (photos found by several tags are
    searched more than once). Downloads run at the lower of the recipe's global rate limit and
    the throughput measured against the local server (a simulated round trip per photo).
    """
    if faces_per_photo <= 0:
        raise ValueError(f"faces_per_photo must be > 0, got {faces_per_photo}")
    step = "crawl"
    photos = faces / faces_per_photo
    calls = photos / flickr.per_page + photos / flickr.result_cap
    measured = float(crawl_source.data["concurrent_photos_per_s"])
    limit = flickr.download_rate if flickr.download_rate > 0 else math.inf
    rate = min(measured, limit)
    recipe = "recipes.flickr('paper')"
    rows = [
        _row(step, "photos to download", photos, "photos", f"{faces:,} faces / {faces_per_photo:.2f} faces per photo",
             "recipes.datasets().flickr_face_faces; faces per photo: see the preprocessing benchmark"),
        _row(step, "search calls (at least)", calls, "calls",
             f"photos / per_page {flickr.per_page} + photos / result_cap {flickr.result_cap}", recipe),
        _row(step, "search time", calls / flickr.api_rate / HOUR, "hours",
             f"calls / api_rate {flickr.api_rate:g} per s", recipe),
        _row(step, "download throughput, measured", measured, "photos/s",
             f"{crawl_source.data['concurrency']} concurrent downloads, "
             f"{crawl_source.data['latency_s'] * 1000:g} ms simulated round trip", crawl_source.label),
        _row(step, "download throughput, recipe limit", limit, "photos/s", "download_rate", recipe),
        _row(step, "download time", photos / rate / HOUR, "hours", f"photos / {rate:g} photos/s (the lower)",
             crawl_source.label if rate == measured else recipe),
    ]
    rows.append(_row(step, "crawl wall time", rows[2]["value"] + rows[5]["value"], "hours",
                     "search, then download (facelib.flickr.crawl runs them in turn)", "sum of the two"))
    return pd.DataFrame(rows)


def photos_to_download(crawl_table: pd.DataFrame) -> float:
    """The photos the crawl fetches, from a :func:`crawl` table."""
    return float(crawl_table.set_index("item").loc["photos to download", "value"])


def preprocess(images: Mapping[str, float], preprocess_source: Source, cores: int) -> pd.DataFrame:
    """Detection + crop of each image set: CPU core-hours and wall hours on ``cores`` cores.

    The rate is the pipeline's images per CPU-second with one worker (the run's every process
    and thread counted), measured on the benchmark's photos.
    """
    if cores < 1:
        raise ValueError(f"cores must be >= 1, got {cores}")
    run = preprocess_source.data["runs"]["pipeline:1"]
    rate = float(run["images_per_cpu_s"])
    rows = []
    for name, n in images.items():
        core_h = n / rate / HOUR
        rows.append({"images": n, "images per CPU-second": rate, "CPU core-hours": core_h,
                     "cores": cores, "wall hours": core_h / cores, "source": preprocess_source.label,
                     "set": name})
    return pd.DataFrame(rows).set_index("set")


def gpu_variants(gpu_source: Source, images: int, epochs: int) -> pd.DataFrame:
    """Each measured SwAV step variant: images/s per GPU and the GPU-hours of ``epochs`` epochs
    of ``images`` images (variants the benchmark could not run are left out)."""
    rows = {name: {"images/s per GPU": float(v["images_per_s"]),
                   "GPU-hours": images * epochs / float(v["images_per_s"]) / HOUR}
            for name, v in gpu_source.data["variants"].items() if "images_per_s" in v}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("variant")


def loader_cores(gpu_images_per_s: float, multicrop_source: Source) -> dict[str, float]:
    """Loader cores that keep one GPU fed, per multi-crop path (``recipes.Pretrain.augment_on``)."""
    per_core = multicrop_source.data["images_per_s_per_core"]
    return {"loader": gpu_images_per_s / per_core["cpu_path_loader"],
            "device": gpu_images_per_s / per_core["device_path_loader"]}


def pretrain(sets: Mapping[str, int], recipe: recipes.Pretrain, gpu_source: Source, multicrop_source: Source,
             variant: str) -> pd.DataFrame:
    """SwAV pretraining for ``recipe.epochs`` on each set: GPU-hours, wall hours, loader cores.

    Wall hours assume the measured one-GPU throughput on each of ``recipe.num_gpus`` GPUs (the
    all-reduce and synchronised BN between GPUs are not in the measurement).

    Raises:
        ValueError: ``variant`` is not in the GPU measurement, or it used another batch per GPU.
    """
    variants = gpu_source.data["variants"]
    if variant not in variants or "images_per_s" not in variants[variant]:
        raise ValueError(f"variant {variant!r} not measured in {gpu_source.file}; measured: {', '.join(variants)}")
    if gpu_source.data["batch_per_gpu"] != recipe.images_per_gpu:
        raise ValueError(f"{gpu_source.file} measured {gpu_source.data['batch_per_gpu']} images per GPU, "
                         f"the recipe takes {recipe.images_per_gpu}")
    ips = float(variants[variant]["images_per_s"])
    cores = loader_cores(ips, multicrop_source)
    rows = []
    for name, n in sets.items():
        gpu_h = n * recipe.epochs / ips / HOUR
        rows.append({"set": name, "images": n, "epochs": recipe.epochs, "images/s per GPU": ips,
                     "GPU-hours": gpu_h, "GPUs": recipe.num_gpus, "wall hours": gpu_h / recipe.num_gpus,
                     "loader cores per GPU, CPU path": cores["loader"],
                     "loader cores per GPU, device path": cores["device"],
                     "loader core-hours, CPU path": gpu_h * cores["loader"],
                     "loader core-hours, device path": gpu_h * cores["device"],
                     "source": f"{gpu_source.label}; {multicrop_source.label}"})
    return pd.DataFrame(rows).set_index("set")


def finetune(sets: Mapping[str, tuple[str, int]], regimes: Sequence[float], inits: int, finetune_source: Source,
             profile: str = "paper") -> pd.DataFrame:
    """The fine-tuning grid: per task, runs and GPU-hours with the fewest and the most epochs.

    A run of regime r trains ``ceil(r * images / batch)`` steps per epoch, each of the measured
    step time (the recipe's whole batch on one GPU, ``recipes.Launch.finetune_gpus_per_run``).
    The supplement gives each task's epochs as a range "depending on the data regime": the two
    columns are the grid with every run at the low and at the high end. Evaluation, precise-BN
    passes and data loading are not counted.
    """
    if inits < 1:
        raise ValueError(f"inits must be >= 1, got {inits}")
    rows = []
    for task_name, (dataset, n) in sets.items():
        rec = recipes.task(task_name, profile)
        m = finetune_source.data.get(task_name)
        if m is None:
            raise ValueError(f"{finetune_source.file} has no measurement of task {task_name!r}")
        if m["batch"] != rec.batch_size:
            raise ValueError(f"{finetune_source.file}: {task_name} measured with batch {m['batch']}, "
                             f"the recipe takes {rec.batch_size}")
        steps = sum(math.ceil(r * n / rec.batch_size) for r in regimes)  # one epoch of every regime
        lo, hi = rec.epochs_range
        per_init = [steps * e * m["step_s"] / HOUR for e in (lo, hi)]
        longest = math.ceil(max(regimes) * n / rec.batch_size) * m["step_s"] / HOUR  # per epoch
        rows.append({"task": task_name, "training set": dataset, "images at 100 %": n, "batch": rec.batch_size,
                     "step s": m["step_s"], "regimes": len(regimes), "initialisations": inits,
                     "runs": len(regimes) * inits, "epochs": f"{lo}-{hi}",
                     "GPU-hours, fewest epochs": per_init[0] * inits, "GPU-hours, most epochs": per_init[1] * inits,
                     "longest run hours, fewest epochs": longest * lo, "longest run hours, most epochs": longest * hi,
                     "source": finetune_source.label})
    return pd.DataFrame(rows).set_index("task")


def summary(crawl_table: pd.DataFrame, preprocess_table: pd.DataFrame, pretrain_table: pd.DataFrame,
            finetune_table: pd.DataFrame, finetune_gpus: int) -> pd.DataFrame:
    """The totals: per step, GPU-hours, CPU core-hours and wall hours.

    Wall hours: the crawl's; preprocessing on the table's cores; pretraining the sets one after
    the other on the recipe's GPUs; the fine-tuning grid's runs spread over ``finetune_gpus``
    GPUs (never shorter than its longest run). CPU core-hours of fine-tuning's data loading
    are not measured (NaN).
    """
    if finetune_gpus < 1:
        raise ValueError(f"finetune_gpus must be >= 1, got {finetune_gpus}")
    crawl_h = float(crawl_table.set_index("item").loc["crawl wall time", "value"])
    rows = [
        {"step": "crawl Flickr-Face", "GPU-hours": 0.0, "CPU core-hours": 0.0, "wall hours": crawl_h,
         "note": "bound by the API and download rate limits, not by compute"},
        {"step": "preprocess", "GPU-hours": 0.0, "CPU core-hours": float(preprocess_table["CPU core-hours"].sum()),
         "wall hours": float(preprocess_table["wall hours"].sum()),
         "note": f"on {int(preprocess_table['cores'].iloc[0])} cores"},
    ]
    for path, col in (("CPU path", "loader core-hours, CPU path"), ("device path", "loader core-hours, device path")):
        rows.append({"step": f"pretrain, multi-crop {path}", "GPU-hours": float(pretrain_table["GPU-hours"].sum()),
                     "CPU core-hours": float(pretrain_table[col].sum()),
                     "wall hours": float(pretrain_table["wall hours"].sum()),
                     "note": f"{len(pretrain_table)} sets, one after the other on "
                             f"{int(pretrain_table['GPUs'].iloc[0])} GPUs; CPU: loader cores"})
    for end in ("fewest", "most"):
        gpu_h = float(finetune_table[f"GPU-hours, {end} epochs"].sum())
        longest = float(finetune_table[f"longest run hours, {end} epochs"].max())
        rows.append({"step": f"fine-tuning grid, {end} epochs", "GPU-hours": gpu_h, "CPU core-hours": float("nan"),
                     "wall hours": max(gpu_h / finetune_gpus, longest),
                     "note": f"{int(finetune_table['runs'].sum())} one-GPU runs on {finetune_gpus} GPUs at once"})
    return pd.DataFrame(rows).set_index("step")
