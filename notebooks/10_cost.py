# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   facelib:
#     after: []  # pages this one reads from (facelib book --jobs)
# ---

# %% [markdown]
# # What rerunning the paper costs
#
# Before spending a cluster on the `paper` profile, this page turns measured per-item costs into
# the time and resources of the paper's runs: crawling Flickr-Face, preprocessing the
# pretraining images, SwAV pretraining on each pretraining set, and the fine-tuning grid.
# Every rate comes from a file in `benchmarks/measured/` written by a script in `benchmarks/`
# (each records the machine and the date), every size, epoch count and limit from
# `facelib.recipes`; `facelib.cost` does the arithmetic, and each table names its source.
# Rerun a benchmark on your own hardware and this page follows. The same figures in both
# profiles: the page reads measurements, it trains nothing.

# %% tags=["parameters"]
from typing import Optional

profile = "demo"  # either: the page reads measurements in both profiles
measured_dir: Optional[str] = None  # None: benchmarks/measured of this repo
cluster = "v100x8"  # slurm/clusters.yaml profile: its jobs run at once
gpu_variant = "bf16 + channels_last"  # SwAV step of the totals (as trained)
faces_per_photo: Optional[float] = None  # None: the preprocessing benchmark's
initialisations: Optional[int] = None  # per task, regime; None: 2 + sets

# %%
from pathlib import Path

from facelib import book, cost, launch, recipes, viz

folder = (Path(measured_dir) if measured_dir
          else book.find_root() / cost.MEASURED_DIR)
sources = cost.load_all(folder)
clus = launch.cluster(cluster)
paper = recipes.pretrain("paper")
datasets = recipes.datasets()
cpus_per_job = clus.cpus_per_task or recipes.launch("paper").cpus_per_task
parallel = clus.array_parallelism or 1
viz.table(cost.sources_table(sources),
          "The measured results this page reads: where and when each was "
          "measured, and the benchmark that writes it.")

# %% [markdown]
# ## Crawling Flickr-Face (supplement 3)
#
# The crawl searches the 100 tags through `flickr.photos.search` under Flickr's API limit, then
# downloads each photo once. The number of photos it takes to find Flickr-Face's faces depends
# on how many faces a photo holds; by default the page takes the ratio the preprocessing benchmark
# found on its folder of photos of people (a Flickr tag search also returns photos without a
# face, so this underestimates the photos to fetch). Download throughput was measured against
# the local stand-in server with a simulated round trip per photo; the recipe's global rate
# limit is lower and sets the pace.

# %%
fpp = faces_per_photo or cost.measured_faces_per_photo(
    sources["bench_preprocess.json"])
crawl_table = cost.crawl(datasets.flickr_face_faces, fpp,
                         recipes.flickr("paper"),
                         sources["bench_flickr_crawl.json"])
viz.table(crawl_table.set_index("item").drop(columns="step"),
          "The Flickr-Face crawl: photos to fetch, search calls and time, "
          "download time; `how` gives the arithmetic.")

# %% [markdown]
# ## Preprocessing (supplement 1.1)
#
# Every image is decoded, its faces detected with RetinaFace and cropped to 256x256 px. The rate
# is the pipeline's images per CPU-second with one worker process, measured by
# `benchmarks/bench_preprocess.py` on photos of people (its folder, copies and faces found are in
# the file). Large-Scale-Face contains Full and Small VGG-Face, so it is preprocessed once; the
# Flickr photos come on top. Wall time: the cluster profile's array elements at once, each with
# the recipe's CPUs per task.

# %%
preprocess_table = cost.preprocess(
    {"Large-Scale-Face": datasets.large_scale_face_images,
     "Flickr-Face photos": cost.photos_to_download(crawl_table)},
    sources["bench_preprocess.json"], cores=parallel * cpus_per_job)
bench_folder = sources["bench_preprocess.json"].data["folder"]
viz.table(preprocess_table.drop(columns="source"),
          f"Detection and cropping on cluster `{cluster}`: {parallel} array "
          f"elements x {cpus_per_job} CPUs = {parallel * cpus_per_job} "
          f"cores. The rate: {sources['bench_preprocess.json'].label}, "
          f"measured on {bench_folder}.")

# %% [markdown]
# ## SwAV pretraining (supplement 1.1)
#
# The GPU throughput is the measured ResNet-50 SwAV step (multi-crops, LARS, Sinkhorn) on one
# GPU with the paper's images per GPU, on crops already on the GPU; the variants differ in
# precision, memory layout and compilation:

# %%
gpu = sources["bench_swav_gpu.json"]
viz.table(cost.gpu_variants(gpu, datasets.full_vggface_images, paper.epochs),
          f"The measured SwAV step variants ({gpu.label}, "
          f"{gpu.data['batch_per_gpu']} images per GPU) and the GPU-hours "
          f"of the recipe's {paper.epochs} epochs of Full VGG-Face. The "
          f"recipe: {paper.num_gpus} GPUs, {paper.images_per_gpu} images "
          f"per GPU, crops {paper.nmb_crops} x {paper.size_crops} px.")

# %% [markdown]
# The totals below use the variant `facelib.swav.train` runs (bf16 autocast and channels_last
# on a GPU; no `torch.compile`). Feeding a GPU takes loader cores: each must decode and
# multi-crop its images. With the CPU path (`augment_on="loader"`, OpenCV in the workers) a
# core yields far fewer images per second than with the device path (`augment_on="device"`,
# the workers only decode and draw, the GPU makes the crops), as measured by
# `benchmarks/bench_swav_device_multicrop.py`. The GPU time of the device path's crops is not
# in the GPU figure; `benchmarks/bench_swav_gpu_data.py` measures the whole step with each path
# where a GPU is at hand. Wall hours assume the one-GPU throughput on each of the recipe's GPUs
# (the all-reduce and synchronised BN between them are not measured).

# %%
multicrop = sources["bench_swav_device_multicrop.json"]
per_core = multicrop.data["images_per_s_per_core"]
pretrain_table = cost.pretrain(cost.pretraining_sets(), paper, gpu,
                               multicrop, gpu_variant)
viz.table(pretrain_table.drop(columns="source"),
          f"SwAV pretraining with `{gpu_variant}` ({gpu.label}) on each "
          f"pretraining set. Loader throughput per core ({multicrop.label}): "
          f"CPU path "
          f"{per_core['cpu_path_loader']:.0f} images/s, device path "
          f"{per_core['device_path_loader']:.0f} images/s (decoding alone: "
          f"{per_core['decode']:.0f}); the recipe asks "
          f"{recipes.launch('paper').cpus_per_task} CPUs per GPU task.")

# %% [markdown]
# ## The fine-tuning grid (supplement 1.2 and 1.3)
#
# Each task is fine-tuned on each data regime from each initialisation. Step times are the
# measured paper-recipe steps with the whole batch on one GPU (ResNet-50, fp32,
# `benchmarks/gpu_finetune_memory.py`), the way `facelib` runs them
# (`recipes.Launch.finetune_gpus_per_run`). The training sets and their sizes are not in the
# supplement: `recipes.Datasets` notes which public sets the page assumes. The supplement gives
# epochs as a range per task "depending on the data regime", so the grid is costed with every
# run at the low and at the high end. Evaluation and data loading are not counted.

# %%
inits = initialisations or 2 + len(cost.pretraining_sets())
regimes = recipes.sampling().regimes
finetune_table = cost.finetune(cost.finetune_sets(), regimes, inits,
                               sources["gpu_finetune_memory.json"])
shares = ", ".join(f"{r:.0%}" for r in regimes)
viz.table(finetune_table.drop(columns="source"),
          f"The fine-tuning grid: {len(regimes)} regimes ({shares}) x "
          f"{inits} initialisations per task; runs spread over {parallel} "
          f"GPUs at once (cluster `{cluster}`). Step times: "
          f"{sources['gpu_finetune_memory.json'].label}.")

# %% [markdown]
# ## In total

# %%
summary = cost.summary(crawl_table, preprocess_table, pretrain_table,
                       finetune_table, finetune_gpus=parallel)
viz.table(summary, "What rerunning the paper costs, per step.",
          na="not measured")

# %% [markdown]
# Not counted, because nothing here measures them: the communication between the pretraining
# GPUs (all-reduce, synchronised BN), the GPU time of the device path's crops, the fine-tuning
# runs' data loading, evaluation and precise-BN passes, jobs requeued after pre-emption, and
# storage. Each table above shows where its rates come from; rerunning a benchmark on other
# hardware (its script is named in the first table) updates this page.
