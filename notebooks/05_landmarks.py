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
# # Facial landmark localisation
#
# Supplement 1.2, "Facial Landmark Localization", following FAN and HRNet: the ResNet features
# are upsampled to heatmaps (64x64 in the paper) with Gaussian targets and a pixel-wise L2 loss;
# Adam ($\beta = (0.5, 0.99)$), learning rate 1e-4, weight decay 1e-5, batch 24, 60-480
# epochs; augmentation by rotation (+-30 deg), horizontal flip (with the landmark mirror
# permutation), scaling (0.85-1.15) and colour jitter. Points are decoded from the heatmaps with
# sub-pixel refinement. Metrics: the normalised mean error (NME) with the inter-ocular distance
# (outer eye corners) or the box size, its cumulative error distribution (CED), the area under it
# and the failure rate at a threshold. `facelib.tasks.landmarks` implements the task. In the
# `demo` profile everything runs on the CPU on a few hundred **synthetic faces** with 68 iBUG
# points (`facelib.data.synth`): our numbers describe that toy setting, not 300W, WFLW or COFW.

# %% tags=["parameters"]
profile = "demo"  # "demo": in-process grid on synthetic faces | "paper": read the runs of the SLURM grid
cluster: str | None = None  # a slurm/clusters.yaml profile: submit the missing runs as a job array, then read the finished ones; None: demo trains here, paper only reads
results_dir: str | None = None  # runs go to <results_dir>/landmarks/<init>/<pct>pct; None: results/ in the repository
regimes: list = [1.0, 0.1]  # fractions of the training labels (supplement 1.3)
n_train: int = 400  # synthetic training faces (demo)
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

from facelib import book, recipes, viz
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
task = FT.make_task("landmarks", profile, overrides)

# %% [markdown]
# ## The recipe
#
# Every value comes from `facelib.recipes` with the section of the supplement it is printed in;
# `convention` marks what the supplement does not give (here the heatmap sigma, the head's width,
# the failure threshold). The demo column shows what the demo profile changes (sizes only).

# %%
viz.recipe_table(recipes.task("landmarks", "paper"), recipes.task("landmarks", "demo"))

# %% [markdown]
# ## Augmented inputs
#
# The top row is the evaluation crop (a square of 256/190 times the face box, as in pretraining);
# below, random draws of the training augmentation with their target points. The larger red
# point is point 36, the outer corner of the image-left eye: after a flip the mirror permutation
# keeps it on the image left.

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
grid = G.page_grid("landmarks", inits, regimes, out, profile=profile, data=data, overrides=overrides,
                   cluster=cluster)
grid.reindex(columns=["run", "n_train", "seconds", "nme_interocular", "auc_interocular", "fr_interocular", "nme_box"])

# %% [markdown]
# ## Training curves
#
# Read from each run's `log.jsonl` (loss per iteration, and its mean per epoch).

# %%
if len(grid):
    plots.training_curves({f"{r.init} {r.regime}": out / r.run for r in grid.itertuples()},
                          title="Facial landmark localisation: training loss");

# %% [markdown]
# ## Our results (synthetic faces in the demo)
#
# NME in % of the inter-ocular distance (outer eye corners 36 and 45) and of the box size
# $\sqrt{wh}$, AUC and failure rate (FR) at the recipe's threshold, on held-out synthetic faces.
#
# The `mean baseline` rows are the trivial predictor that outputs the mean training target of
# their regime (the mean shape), with no training at all: the scale to read each run against.
# The demo's recipe is sized for that (about 150 optimiser steps at 100 %, with the learning
# rate and heatmap width of its recipe notes): the verdict below the table is computed from it.

# %%
cols = ["nme_interocular", "auc_interocular", "fr_interocular", "nme_box", "auc_box", "fr_box"]
rows, baselines = grid, {}
if profile == "demo":  # the mean-target predictor of each regime, no training
    baselines = {sampling.regime_name(r): BL.mean_baseline("landmarks", r, profile=profile, data=data) for r in regimes}
    rows = pd.concat([grid, pd.DataFrame([{**b, "regime": k, "init": "mean baseline"} for k, b in baselines.items()])])
ours = rows.set_index(["regime", "init"])[cols] if len(rows) else rows.reindex(columns=cols)
(ours * [100, 1, 1, 100, 1, 1]).rename(columns={"nme_interocular": "NME io (%)", "nme_box": "NME box (%)"}).style.format(precision=3)

# %%
if baselines:  # each run against its regime's mean shape (lower NME is better)
    display(Markdown(BL.verdict("landmarks", BL.versus_baseline("landmarks", grid, baselines))))

# %% [markdown]
# ## Cumulative error distributions
#
# From each run's `eval.npz`: the fraction of test faces whose NME is below each value.

# %%
if len(grid):
    plots.ced_curves({f"{r.init} {r.regime}": out / r.run for r in grid.itertuples()},
                     key="ced_interocular", xlabel="NME (inter-ocular)", title="CED, synthetic test faces");

# %% [markdown]
# ## The paper's numbers (not computed here)
#
# The main body's landmark tables were not available to us. The public leaderboard lists, for
# the authors' VGG-Face-pretrained model on COFW, an inter-ocular NME of 3.32 % (see
# `shared/paper/NOTES.md`). Real data, a real backbone and the full recipe: not comparable with
# the synthetic demo above.

# %%
pd.DataFrame([{"dataset": "COFW", "metric": "NME, inter-ocular (%)", "init": "ours (VGG-Face SwAV)",
               "value": 3.32, "source": "Papers-with-Code leaderboard"}]).style.hide(axis="index")

# %%
display(Markdown(f"Page time: {time.perf_counter() - t_page:.0f} s "
                 f"(training: {grid['seconds'].sum() if len(grid) else 0:.0f} s, threads: {threads})."))
