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
# # 3D face reconstruction
#
# Supplement 1.2, "3D Face reconstruction", and 4.2: trained on 300W-LP in the paper, with
# scaling (0.85-1.15), in-plane rotation (+-45 deg) and 10 % translation; SGD with momentum 0.9,
# learning rate 0.05, weight decay 1e-4, 120-360 epochs. The supplement does not say what is
# regressed: we regress the 68 3D landmarks of the AFLW2000-3D convention (`recipes.Recon3D.target`
# says so) with a linear layer on the pooled features. Metrics: the NME normalised by the face box
# size $\sqrt{wh}$ (the AFLW2000-3D protocol, on x and y; also on x, y, z) and cumulative error
# curves as in the supplement's Fig. 2. `facelib.tasks.recon3d` implements it.
#
# In the `demo` profile the grid runs here on synthetic faces whose 3D points come from the
# renderer's face model. The `paper` profile reads (or, with `cluster`, submits) the SLURM grid.

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

page = TaskPage.from_parameters("recon3d", globals())

# %% [markdown]
# ## The recipe
#
# `convention` marks, here, the regressed target (68 3D points) and the batch size.

# %%
page.recipe_section()

# %% [markdown]
# ## Augmented inputs
#
# The evaluation crop and random draws of the training augmentation with the projected points:
# scaling (0.85-1.15), in-plane rotation (+-45 deg), 10 % translation, no flip.

# %%
page.samples()

# %% [markdown]
# ## The grid: data regimes x initialisations x seeds
#
# The head: one linear layer on the pooled features to 68 x 3 coordinates, standardised per
# axis; mean squared error; SGD.

# %%
page.grid_section()

# %% [markdown]
# ## Results
#
# NME normalised by the box size $\sqrt{wh}$ on x, y (the AFLW2000-3D protocol), the headline,
# and on x, y, z. The `mean predictor` outputs the mean training shape.

# %%
page.results_section()

# %% [markdown]
# ## Does pretraining help, and where?
#
# The supplement's 3D numbers (Fig. 2) are curves without a table; none are set beside ours.

# %%
page.verdict_section()

# %% [markdown]
# ## Cumulative error distributions
#
# From each seed-0 run's `eval.npz`: the share of test faces whose error is below each value
# (3D NME (box size)).

# %%
page.ced(key="ced_box_3d", xlabel="3D NME (box size)")

# %% [markdown]
# ## The paper's numbers (as printed, not computed here)

# %%
page.paper()

# %%
page.footer()
