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
# ---

# %% [markdown]
# # Action unit intensity estimation
#
# Supplement 1.2, "Action Unit (AU) Intensity Estimation", and Tables 1 and 2: a regression
# head predicts the intensity (0-5) of the 12 DISFA action units (5 for BP4D) from the
# pretrained ResNet, trained with Adam ($\beta = (0.5, 0.99)$), learning rate 1e-4, weight decay
# 5e-6, batch 48, with rotation, flips, scaling, Gaussian blur (kernel 5-10 px, p 0.4) and
# colour jitter; the metric is the intraclass correlation ICC(3,1) per AU and its mean
# (Shrout and Fleiss 1979). `facelib.tasks.au` implements it and `facelib.tasks.finetune` trains it
# for each data regime and initialisation. In the `demo` profile everything runs on the CPU
# on a few hundred **synthetic faces** whose AU labels come from the renderer
# (`facelib.data.synth`): our numbers below describe that toy setting, not DISFA; the paper's
# numbers are shown apart, as printed.

# %% tags=["parameters"]
profile = "demo"  # "demo": in-process grid on synthetic faces | "paper": read the runs of the SLURM grid
cluster: str | None = None  # a slurm/clusters.yaml profile: submit the missing runs as a job array, then read the finished ones; None: demo trains here, paper only reads
results_dir: str | None = None  # runs go to <results_dir>/au/<init>/<pct>pct; None: results/ in the repository
regimes: list = [1.0, 0.1]  # fractions of the training labels (supplement 1.3)
n_train: int = 96  # synthetic training faces (demo)
n_test: int = 64  # synthetic test faces, other persons (demo)
image_size: int = 96  # side of the rendered synthetic faces (the task crops input_size from it)
num_identities: int = 16  # persons per synthetic set
overrides: dict = {}  # validated recipe overrides, e.g. {"epochs": 2}
swav_trunk: str | None = None  # our pretrained trunk; None: results/swav_<profile>/trunk.pth (page 03), else a small one is trained here
imagenet_weights: str | None = None  # local torchvision ImageNet state dict for the "imagenet" init (nothing downloads)
authors_weights: str | None = None  # the authors' released flr_r50_vgg_face.pth for the "authors" init
threads: int = 1  # torch CPU threads (more than one is slower on a busy machine: threads wait on each other)

# %%
import time
from pathlib import Path

import pandas as pd
import torch
from IPython.display import Markdown, display

from facelib import book, recipes, results, viz
from facelib.data import sampling
from facelib.tasks import baseline as BL
from facelib.tasks import finetune as FT
from facelib.tasks import grid as G
from facelib.tasks import plots

t_page = time.perf_counter()
torch.set_num_threads(threads)
root = book.find_root()
out = Path(results_dir) if results_dir else root / "results"
data = FT.DataSpec(n_train=n_train, n_test=n_test, size=image_size, num_identities=num_identities)
task = FT.make_task("au", profile, overrides)

# %% [markdown]
# ## The recipe
#
# Every value comes from `facelib.recipes` with the section of the supplement it is printed in;
# `convention` marks what the supplement does not give (here the loss, and the blur kernel's
# scaling with the input size). The demo column shows what the demo profile changes: sizes, and
# the learning rate with the head's initialisation (without them its 24 steps learn nothing;
# their notes give the measurements).

# %%
viz.recipe_table(recipes.task("au", "paper"), recipes.task("au", "demo"))

# %% [markdown]
# ## Augmented inputs
#
# The top row is the evaluation crop (a square of 256/190 times the face box, as in pretraining);
# below, random draws of the training augmentation. AU labels do not change under a mirror.

# %%
train_set, test_set = data.build()
plots.augmented_samples(task, train_set, n=6, repeats=2);

# %% [markdown]
# ## Fine-tuning grid
#
# Each data regime keeps a fixed, label-agnostic prefix of one seeded permutation of the
# training set (`facelib.data.sampling`); each run starts from a different initialisation of the
# same ResNet: `random`, `ours` (our SwAV pretraining on synthetic faces from page 03) and, when
# their weights files are given, `imagenet` and the authors' released model. Runs resume: a
# finished run is read back from `results/`.

# %%
inits = G.page_inits(profile, out, root, swav_trunk=swav_trunk, imagenet_weights=imagenet_weights,
                     authors_weights=authors_weights)
grid = G.page_grid("au", inits, regimes, out, profile=profile, data=data, overrides=overrides,
                   cluster=cluster)
grid.reindex(columns=["run", "n_train", "seconds", "icc_mean", "mae_mean"])

# %% [markdown]
# ## Training curves
#
# Read from each run's `log.jsonl` (loss per iteration, and its mean per epoch).

# %%
if len(grid):
    plots.training_curves({f"{r.init} {r.regime}": out / r.run for r in grid.itertuples()},
                          title="AU intensity: mean squared error");

# %% [markdown]
# ## Our results (synthetic faces in the demo)
#
# ICC(3,1) per AU and its mean, and the mean absolute error, on the held-out synthetic faces.
#
# The `mean baseline` rows are the trivial predictor that outputs the mean training target of
# their regime (the mean intensities; its ICC is 0), with no training at all: the scale to read
# each run against. In the paper profile the head starts as that predictor (`head_init`), so a
# run that learns nothing scores about the same; the demo's head starts at random (see the
# recipe), so a run that learns nothing scores worse. The verdict below the table is computed
# from it.

# %%
au_cols = [f"icc_au{a}" for a in (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)]
rows, baselines = grid, {}
if profile == "demo":  # the mean-target predictor of each regime, no training
    baselines = {sampling.regime_name(r): BL.mean_baseline("au", r, profile=profile, data=data) for r in regimes}
    rows = pd.concat([grid, pd.DataFrame([{**b, "regime": k, "init": "mean baseline"} for k, b in baselines.items()])])
ours = (rows.set_index(["regime", "init"])[au_cols + ["icc_mean", "mae_mean"]] if len(rows)
        else rows.reindex(columns=au_cols + ["icc_mean", "mae_mean"]))
ours.rename(columns=lambda c: c.replace("icc_au", "AU")).style.format(precision=3)

# %%
if baselines:  # each run against its regime's mean predictor (ICC higher, MAE lower is better)
    display(Markdown(BL.verdict("au", BL.versus_baseline("au", grid, baselines))))

# %% [markdown]
# ## The paper's numbers (as printed, not computed here)
#
# Table 1 (DISFA) and Table 2 (BP4D, printed "BU4D") of the supplement; page 09 checks their
# averages. They are few-shot results of the authors' models on real data and are not
# comparable with the synthetic demo above.

# %%
display(results.paper_table("disfa").style.hide(axis="index"))
results.paper_table("bp4d").style.hide(axis="index")

# %%
display(Markdown(f"Page time: {time.perf_counter() - t_page:.0f} s "
                 f"(training: {grid['seconds'].sum() if len(grid) else 0:.0f} s, threads: {threads})."))
