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
# # Face recognition
#
# Supplement 1.2, "Face recognition": faces "normalized and aligned using the provided 5
# landmarks" (a similarity onto the ArcFace template), random horizontal flips as the only
# augmentation, the CosFace loss with margin 0.35 (its scale, 64, is not printed: a convention),
# SGD with momentum 0.9, learning rate 0.1, weight decay 5e-4, batch 512, 18-54 epochs.
# Evaluation on persons never seen in training: verification accuracy with the threshold chosen
# by 10-fold cross-validation on image pairs (the LFW protocol) and the true accept rate at a
# false accept rate on template pairs (the IJB protocol). `facelib.tasks.recognition`
# implements it. In the `demo` profile everything runs on the CPU on a few hundred **synthetic
# faces** of a few persons: our numbers describe that toy setting, not the paper's benchmarks.

# %% tags=["parameters"]
profile = "demo"  # "demo": in-process grid on synthetic faces | "paper": read the runs of the SLURM grid
cluster: str | None = None  # a slurm/clusters.yaml profile: submit the missing runs as a job array, then read the finished ones; None: demo trains here, paper only reads
results_dir: str | None = None  # runs go to <results_dir>/recognition/<init>/<pct>pct; None: results/ in the repository
regimes: list = [1.0, 0.1]  # fractions of the training labels (supplement 1.3)
n_train: int = 384  # synthetic training faces (demo)
n_test: int = 128  # synthetic test faces of persons held out from training (demo)
image_size: int = 96  # side of the rendered synthetic faces (the task crops input_size from it)
num_identities: int = 32  # persons per synthetic set
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
task = FT.make_task("recognition", profile, overrides, num_classes=num_identities)

# %% [markdown]
# ## The recipe
#
# Every value comes from `facelib.recipes` with the section of the supplement it is printed in;
# `convention` marks what the supplement does not give (here CosFace's scale $s = 64$, the
# embedding size and the FAR targets). The demo column shows what the demo profile changes (sizes only).

# %%
viz.recipe_table(recipes.task("recognition", "paper"), recipes.task("recognition", "demo"))

# %% [markdown]
# ## Augmented inputs
#
# The top row is the aligned face (5-point similarity onto the ArcFace template scaled to the
# input size) with its identity; below, random draws of the only augmentation, a horizontal flip.

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
grid = G.page_grid("recognition", inits, regimes, out, profile=profile, data=data, overrides=overrides,
                   cluster=cluster)
grid.reindex(columns=["run", "n_train", "seconds", "verification_acc", "tar_at_far_0.001", "num_pairs"])

# %% [markdown]
# ## Training curves
#
# Read from each run's `log.jsonl` (loss per iteration, and its mean per epoch).

# %%
if len(grid):
    plots.training_curves({f"{r.init} {r.regime}": out / r.run for r in grid.itertuples()},
                          title="Recognition: CosFace loss");

# %% [markdown]
# ## Our results (synthetic faces in the demo)
#
# Verification accuracy (mean and standard deviation over the 10 folds) on image pairs of
# held-out persons, and TAR at the recipe's FARs on template pairs. With few impostor template
# pairs (`num_template_impostors`) a FAR of 1e-3 or 1e-4 admits no false accept at all: only
# the strictest threshold is allowed, which the paper-scale protocol does not suffer from.
#
# The `chance` row answers every pair with the more frequent of "same" and "different" (the
# pairs are balanced: 50 %): the scale to read each run against, in the verdict below the table.

# %%
cols = ["verification_acc", "verification_std"] + [f"tar_at_far_{f:g}" for f in task.recipe.far_targets] + ["num_pairs", "num_template_impostors"]
rows, baselines = grid, {}
if profile == "demo":  # chance on the test pairs, no training
    baselines = {sampling.regime_name(r): BL.mean_baseline("recognition", r, profile=profile, data=data) for r in regimes}
    rows = pd.concat([grid, pd.DataFrame([{**b, "regime": k, "init": "chance"} for k, b in baselines.items()])])
(rows.set_index(["regime", "init"])[cols] if len(rows) else rows.reindex(columns=cols)).style.format(precision=3)

# %%
if baselines:  # each run against chance (higher verification accuracy is better)
    display(Markdown(BL.verdict("recognition", BL.versus_baseline("recognition", grid, baselines))))

# %% [markdown]
# ## The paper's numbers
#
# The supplement gives no face recognition numbers and the main body's tables were not
# available to us, so there is nothing to set beside ours here (page 09 gathers what exists).

# %%
display(Markdown(f"Page time: {time.perf_counter() - t_page:.0f} s "
                 f"(training: {grid['seconds'].sum() if len(grid) else 0:.0f} s, threads: {threads})."))
