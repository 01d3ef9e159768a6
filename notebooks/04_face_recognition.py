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
#     after: [03]  # pages this one reads from (facelib book --jobs)
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
# implements it.
#
# In the `demo` profile the grid runs here on synthetic faces of 40 persons; the test pairs
# show 40 other persons. The `paper` profile reads (or, with `cluster`, submits) the SLURM grid.

# %% tags=["parameters"]
from typing import Optional

profile = "demo"  # "demo": the grid trains here | "paper": the SLURM grid
cluster: Optional[str] = None  # slurm/clusters.yaml profile to submit to
results_dir: Optional[str] = None  # None: results/ in the repository
regimes: Optional[list] = None  # label shares; None: the profile's
seeds: Optional[list] = None  # fine-tuning seeds; None: the recipe's
n_train: int = 1000  # synthetic training faces (demo)
n_test: int = 300  # synthetic test faces, other persons (demo)
image_size: int = 64  # side of the rendered synthetic faces
num_identities: int = 40  # persons per synthetic set
overrides: dict = {}  # recipe overrides, e.g. {"epochs": 2}
swav_trunk: Optional[str] = None  # ours; None: page 03's trunk
supervised_trunk: Optional[str] = None  # None: page 03's trunk
imagenet_weights: Optional[str] = None  # local ImageNet state dict
authors_weights: Optional[str] = None  # the authors' released model
threads: Optional[int] = None  # torch CPU threads; None: all cores

# %%
from facelib.tasks.page import TaskPage

page = TaskPage.from_parameters("recognition", globals())

# %% [markdown]
# ## The recipe
#
# `convention` marks, here, CosFace's scale $s = 64$, the embedding size and the FAR targets;
# the demo's learning rate suits its batch of 32 (the note gives the measurements).

# %%
page.recipe_section()

# %% [markdown]
# ## Augmented inputs
#
# The aligned face (5-point similarity onto the ArcFace template scaled to the input size)
# with its identity, and random draws of the only augmentation, a horizontal flip.

# %%
page.samples()

# %% [markdown]
# ## The grid: data regimes x initialisations x seeds
#
# The head: pooled features, a linear embedding and the CosFace classifier over the training
# persons; SGD. The test persons are never seen in training.

# %%
page.grid_section()

# %% [markdown]
# ## Results
#
# Verification accuracy (mean over 10 folds) on image pairs of held-out persons, the
# headline, and TAR at the recipe's FARs on template pairs: with few impostor template pairs a
# FAR of 1e-3 admits no false accept, only the strictest threshold. `chance` answers every pair
# with the more frequent of "same" and "different".

# %%
page.results_section()

# %% [markdown]
# ## Does pretraining help, and where?
#
# Identity is what the pretrainings were asked about (page 03's probe): the closest of the five
# tasks to what SwAV and the supervised trunk saw.

# %%
page.verdict_section()

# %% [markdown]
# ## The paper's numbers (as printed, not computed here)

# %%
page.paper()

# %%
page.footer()
