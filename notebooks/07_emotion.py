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
# # Emotion recognition
#
# Supplement 1.2, "Emotion recognition", and 4.1 with Table 3 (AffectNet): "the task specific
# head is a linear layer that regresses the valence and arousal values and also predicts the
# basic emotion classes", trained "to jointly minimise the RMSE and CCC losses for valence and
# arousal, and the cross-entropy loss for classification"; augmentation as for AU intensity
# without blur; Adam ($\beta = (0.5, 0.99)$), **learning rate 0.1 as printed** (unusually high
# for Adam; the paper profile keeps it, the demo's short runs use 3e-4, and `compare_lr` adds a
# run at another rate), weight decay 1e-4, batch 32, 60-240
# epochs. Metrics: expression accuracy; RMSE, SAGR, PCC and CCC of valence and arousal.
# `facelib.tasks.emotion` implements it. In the `demo` profile everything runs on the CPU on a
# few hundred **synthetic faces** whose valence, arousal and expression come from the renderer:
# our numbers describe that toy setting, not AffectNet.

# %% tags=["parameters"]
profile = "demo"  # "demo": in-process grid on synthetic faces | "paper": read the runs of the SLURM grid
cluster: str | None = None  # a slurm/clusters.yaml profile: submit the missing runs as a job array, then read the finished ones; None: demo trains here, paper only reads
results_dir: str | None = None  # runs go to <results_dir>/emotion/<init>/<pct>pct; None: results/ in the repository
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
compare_lr: float | None = None  # e.g. 0.1 (the printed rate, which the demo replaces) or 1e-4: also run the first regime at this learning rate; None: skip (the demo's time budget)

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
task = FT.make_task("emotion", profile, overrides)

# %% [markdown]
# ## The recipe
#
# Every value comes from `facelib.recipes` with the section of the supplement it is printed in;
# `convention` marks what the supplement does not give (here the number of classes and the flip
# probability). The demo column shows what the demo profile changes: sizes, and the learning
# rate (at 0.1 its 36 steps learn nothing; the note gives the measurements).

# %%
viz.recipe_table(recipes.task("emotion", "paper"), recipes.task("emotion", "demo"))

# %% [markdown]
# ## Augmented inputs
#
# The top row is the evaluation crop with its labels (valence, arousal, expression code); below,
# random draws of the training augmentation (rotation, scaling, flip, colour jitter).

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
grid = G.page_grid("emotion", inits, regimes, out, profile=profile, data=data, overrides=overrides,
                   cluster=cluster)
grid.reindex(columns=["run", "n_train", "seconds", "acc", "valence_ccc", "arousal_ccc", "valence_rmse"])

# %% [markdown]
# ### The recipe's learning rate against another
#
# The same grid's first regime at `compare_lr` (a recipe override, recorded in each run's
# `recipe.json`), in its own results folder.

# %%
lr_grid = grid.iloc[:0]
if compare_lr and profile == "demo":
    lr_grid = G.run_grid("emotion", inits, regimes[:1], out / f"emotion_lr{compare_lr:g}", profile=profile,
                         data=data, overrides={**overrides, "lr": compare_lr}, stale="rerun", progress=False)
    display(lr_grid[["run", "seconds", "acc", "valence_ccc", "arousal_ccc", "valence_rmse"]])

# %% [markdown]
# ## Training curves
#
# Read from each run's `log.jsonl` (loss per iteration, and its mean per epoch).

# %%
if len(grid):
    curves = {f"{r.init} {r.regime} lr {task.recipe.lr:g}": out / r.run for r in grid.itertuples()}
    curves.update({f"{r.init} {r.regime} lr {compare_lr:g}": out / f"emotion_lr{compare_lr:g}" / r.run
                   for r in lr_grid.itertuples()})
    plots.training_curves(curves, title="Emotion: RMSE + (1 - CCC) + cross-entropy");

# %% [markdown]
# ## Our results (synthetic faces in the demo)
#
# Table 3's columns for our runs, on held-out synthetic faces (PCC is undefined, shown empty,
# when a model predicts a constant).
#
# The `mean baseline` rows are the trivial predictor that outputs the mean training target of
# their regime (the mean valence and arousal and the most frequent expression), with no
# training at all: the scale to read each run against. The head starts as that predictor
# (`head_init`), so a run that learns nothing scores about the same. The verdict below the
# table is computed from it.

# %%
metric_cols = list(results.AFFECTNET_METRICS)
ours = pd.concat([grid.assign(lr=task.recipe.lr), lr_grid.assign(lr=compare_lr)]) if len(lr_grid) else grid.assign(lr=task.recipe.lr)
baselines = {}
if profile == "demo":  # the mean-target predictor of each regime, no training
    baselines = {sampling.regime_name(r): BL.mean_baseline("emotion", r, profile=profile, data=data) for r in regimes}
    ours = pd.concat([ours, pd.DataFrame([{**b, "regime": k, "init": "mean baseline", "lr": float("nan")}
                                          for k, b in baselines.items()])])
ours.reindex(columns=["regime", "init", "lr", *metric_cols]).set_index(["regime", "init", "lr"])[metric_cols].rename(columns=results.AFFECTNET_METRICS).style.format(precision=3)

# %%
if baselines:  # each run against its regime's mean predictor (accuracy and CCC higher is better)
    display(Markdown(BL.verdict("emotion", BL.versus_baseline("emotion", grid, baselines))))

# %% [markdown]
# ## The paper's numbers (Table 3, as printed; not computed here)
#
# AffectNet, four initialisations and three data regimes. Page 09 checks the text's claim that
# the unsupervised model wins in every regime.

# %%
results.paper_table("affectnet").style.hide(axis="index")

# %%
display(Markdown(f"Page time: {time.perf_counter() - t_page:.0f} s "
                 f"(training: {grid['seconds'].sum() if len(grid) else 0:.0f} s, threads: {threads})."))
