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
# # Facial landmark localisation
#
# Supplement 1.2, "Facial Landmark Localization", following FAN and HRNet: the ResNet features
# are upsampled to heatmaps (64x64 in the paper) with Gaussian targets and a pixel-wise L2 loss;
# Adam ($\beta = (0.5, 0.99)$), learning rate 1e-4, weight decay 1e-5, batch 24, 60-480
# epochs; augmentation by rotation (+-30 deg), horizontal flip (with the landmark mirror
# permutation), scaling (0.85-1.15) and colour jitter. Points are decoded from the heatmaps with
# sub-pixel refinement. Metrics: the normalised mean error (NME) with the inter-ocular distance
# (outer eye corners) or the box size, its cumulative error distribution (CED), the area under it
# and the failure rate at a threshold. `facelib.tasks.landmarks` implements the task.
#
# In the `demo` profile the grid runs here on synthetic faces whose 68 points come from the
# renderer. The `paper` profile reads (or, with `cluster`, submits) the SLURM grid.

# %% tags=["parameters"]
from typing import Optional

profile = "demo"  # "demo": the grid trains here | "paper": the SLURM grid
cluster: Optional[str] = None  # slurm/clusters.yaml profile to submit to
results_dir: Optional[str] = None  # None: results/ in the repository
regimes: Optional[list] = None  # label shares; None: the profile's
seeds: Optional[list] = None  # fine-tuning seeds; None: the recipe's
n_train: int = 1000  # synthetic training faces (demo)
n_test: int = 200  # synthetic test faces, other persons (demo)
image_size: int = 64  # side of the rendered synthetic faces
num_identities: int = 100  # persons per synthetic set
overrides: dict = {}  # recipe overrides, e.g. {"epochs": 2}
swav_trunk: Optional[str] = None  # ours; None: page 03's trunk
supervised_trunk: Optional[str] = None  # None: page 03's trunk
imagenet_weights: Optional[str] = None  # local ImageNet state dict
authors_weights: Optional[str] = None  # the authors' released model
threads: Optional[int] = None  # torch CPU threads; None: all cores

# %%
from facelib.tasks.page import TaskPage

page = TaskPage.from_parameters("landmarks", globals())

# %% [markdown]
# ## The recipe
#
# `convention` marks, here, the heatmap sigma, the head's width and the failure threshold.

# %%
page.recipe_section()

# %% [markdown]
# ## Augmented inputs
#
# The evaluation crop and random draws of the training augmentation with their target points.
# The larger red point is point 36, the outer corner of the image-left eye: after a flip the
# mirror permutation keeps it on the image left.

# %%
page.samples()

# %% [markdown]
# ## The grid: data regimes x initialisations x seeds
#
# The head: three stride-2 deconvolutions to one heatmap per point, a pixel-wise L2 loss, Adam;
# points decoded with sub-pixel refinement.

# %%
page.grid_section()

# %% [markdown]
# ## Results
#
# NME in fractions of the inter-ocular distance (outer eye corners 36 and 45), the headline,
# and of the box size $\sqrt{wh}$. The `mean predictor` outputs the mean training shape of its
# regime.

# %%
page.results_section()

# %% [markdown]
# ## Does pretraining help, and where?
#
# The paper reports its landmark results in the main body (not in the supplement); the
# leaderboard figure below is the authors' model on COFW.

# %%
page.verdict_section()

# %% [markdown]
# ## Cumulative error distributions
#
# From each seed-0 run's `eval.npz`: the share of test faces whose error is below each value
# (NME (inter-ocular)).

# %%
page.ced(key="ced_interocular", xlabel="NME (inter-ocular)")

# %% [markdown]
# ## The paper's numbers (as printed, not computed here)

# %%
page.paper()

# %%
page.footer()
