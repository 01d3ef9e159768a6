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
# # 3D face reconstruction
#
# Supplement 1.2, "3D Face reconstruction", and 4.2: trained on 300W-LP in the paper, with
# scaling (0.85-1.15), in-plane rotation (+-45 deg) and 10 % translation; SGD with momentum 0.9,
# learning rate 0.05, weight decay 1e-4, 120-360 epochs. The supplement does not say what is
# regressed: we regress the 68 3D landmarks of the AFLW2000-3D convention (`recipes.Recon3D.target`
# says so) with a linear layer on the pooled features. Metrics: the NME normalised by the face box
# size $\sqrt{wh}$ (the AFLW2000-3D protocol, on x and y; also on x, y, z) and cumulative error
# curves as in the supplement's Fig. 2. `facelib.tasks.recon3d` implements it. In the `demo`
# profile everything runs on the CPU on a few hundred **synthetic faces** whose 3D points come
# from the renderer's face model: our numbers describe that toy setting, not AFLW2000-3D.

# %% tags=["parameters"]
profile = "demo"  # "demo": in-process grid on synthetic faces | "paper": read the runs of the SLURM grid
cluster: str | None = None  # a slurm/clusters.yaml profile: submit the missing runs as a job array, then read the finished ones; None: demo trains here, paper only reads
results_dir: str | None = None  # runs go to <results_dir>/recon3d/<init>/<pct>pct; None: results/ in the repository
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
task = FT.make_task("recon3d", profile, overrides)

# %% [markdown]
# ## The recipe
#
# Every value comes from `facelib.recipes` with the section of the supplement it is printed in;
# `convention` marks what the supplement does not give (here the target, the loss, the batch size and
# the failure threshold). The demo column shows what the demo profile changes (sizes only).

# %%
viz.recipe_table(recipes.task("recon3d", "paper"), recipes.task("recon3d", "demo"))

# %% [markdown]
# ## Augmented inputs
#
# The top row is the evaluation crop; below, random draws of scaling, rotation and translation
# (no flip is printed for this task) with the target points (x, y of the 3D landmarks).

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
grid = G.page_grid("recon3d", inits, regimes, out, profile=profile, data=data, overrides=overrides,
                   cluster=cluster)
grid.reindex(columns=["run", "n_train", "seconds", "nme_box", "nme_box_3d", "auc_box", "fr_box"])

# %% [markdown]
# ## Training curves
#
# Read from each run's `log.jsonl` (loss per iteration, and its mean per epoch).

# %%
if len(grid):
    plots.training_curves({f"{r.init} {r.regime}": out / r.run for r in grid.itertuples()},
                          title="3D face reconstruction: training loss");

# %% [markdown]
# ## Our results (synthetic faces in the demo)
#
# NME in % of the box size, on x and y (the AFLW2000-3D protocol) and on x, y, z; AUC and
# failure rate at the recipe's threshold.
#
# The `mean baseline` rows are the trivial predictor that outputs the mean training target of
# their regime (the mean 3D shape), with no training at all: the scale to read each run
# against. The head starts as that predictor (`head_init`), so a run that learns nothing
# scores about the same. The verdict below the table is computed from it.

# %%
cols = ["nme_box", "nme_box_3d", "auc_box", "fr_box"]
rows, baselines = grid, {}
if profile == "demo":  # the mean-target predictor of each regime, no training
    baselines = {sampling.regime_name(r): BL.mean_baseline("recon3d", r, profile=profile, data=data) for r in regimes}
    rows = pd.concat([grid, pd.DataFrame([{**b, "regime": k, "init": "mean baseline"} for k, b in baselines.items()])])
ours = rows.set_index(["regime", "init"])[cols] if len(rows) else rows.reindex(columns=cols)
(ours * [100, 100, 1, 1]).rename(columns={"nme_box": "NME 2D (%)", "nme_box_3d": "NME 3D (%)"}).style.format(precision=3)

# %%
if baselines:  # each run against its regime's mean shape (lower NME is better)
    display(Markdown(BL.verdict("recon3d", BL.versus_baseline("recon3d", grid, baselines))))

# %% [markdown]
# ## Cumulative error curves
#
# As the supplement's Fig. 2 (which plots the Florence dataset for the 100 %, 10 % and 2 %
# regimes): the fraction of test faces whose 3D NME is below each value, per run.

# %%
if len(grid):
    plots.ced_curves({f"{r.init} {r.regime}": out / r.run for r in grid.itertuples()},
                     key="ced_box_3d", xlabel="NME 3D (box size)", title="CED, synthetic test faces");

# %% [markdown]
# ## The paper's numbers (not computed here)
#
# The main body's tables were not available to us, and Fig. 2's curves are printed without
# numbers. The public leaderboard lists, for the authors' VGG-Face-pretrained model on
# AFLW2000-3D, a mean NME of 3.42 % (see `shared/paper/NOTES.md`); not comparable with the
# synthetic demo above.

# %%
pd.DataFrame([{"dataset": "AFLW2000-3D", "metric": "mean NME (%)", "init": "ours (VGG-Face SwAV)",
               "value": 3.42, "source": "Papers-with-Code leaderboard"}]).style.hide(axis="index")

# %%
display(Markdown(f"Page time: {time.perf_counter() - t_page:.0f} s "
                 f"(training: {grid['seconds'].sum() if len(grid) else 0:.0f} s, threads: {threads})."))
