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
# # Action unit intensity estimation
#
# Supplement 1.2, "Action Unit (AU) Intensity Estimation", and Tables 1 and 2: a regression
# head predicts the intensity (0-5) of the 12 DISFA action units (5 for BP4D) from the
# pretrained ResNet, trained with Adam ($\beta = (0.5, 0.99)$), learning rate 1e-4, weight decay
# 5e-6, batch 48, with rotation, flips, scaling, Gaussian blur (kernel 5-10 px, p 0.4) and
# colour jitter; the metric is the intraclass correlation ICC(3,1) per AU and its mean
# (Shrout and Fleiss 1979). `facelib.tasks.au` implements it and `facelib.tasks.finetune` trains it
# for each data regime and initialisation.
#
# In the `demo` profile the grid runs here on synthetic faces whose 12 AU intensities drive the
# renderer's face. The `paper` profile reads (or, with `cluster`, submits) the SLURM grid.

# %% tags=["parameters"]
from typing import Optional

profile = "demo"  # "demo": the grid trains here | "paper": the SLURM grid
cluster: Optional[str] = None  # slurm/clusters.yaml profile to submit to
results_dir: Optional[str] = None  # None: results/ in the repository
regimes: Optional[list] = None  # label shares; None: the profile's
seeds: Optional[list] = None  # fine-tuning seeds; None: the recipe's
n_train: int = 4000  # synthetic training faces (demo)
n_test: int = 200  # synthetic test faces, other persons (demo)
image_size: int = 96  # side of the rendered synthetic faces
num_identities: int = 100  # persons per synthetic set
overrides: dict = {}  # recipe overrides, e.g. {"epochs": 2}
swav_trunk: Optional[str] = None  # ours; None: page 03's trunk
supervised_trunk: Optional[str] = None  # None: page 03's trunk
imagenet_weights: Optional[str] = None  # local ImageNet state dict
authors_weights: Optional[str] = None  # the authors' released model
threads: Optional[int] = None  # torch CPU threads; None: all cores

# %%
from facelib.tasks.page import TaskPage

page = TaskPage.from_parameters("au", globals())

# %% [markdown]
# ## The recipe
#
# The demo's learning rate and head initialisation are explained in their notes. The demo
# trains on 4,000 faces (the other task pages on 1,000), so that 2 % of the labels is 80
# faces, for 2 epochs at 100 % (500 steps: a randomly initialised trunk learns nothing in its
# first few hundred) to 40 at 1 %; the epochs' note gives what other sizes measured.

# %%
page.recipe_section()

# %% [markdown]
# ## Augmented inputs
#
# The evaluation crop with its active AUs and random draws of the training augmentation
# (rotation, flip, scaling, Gaussian blur, colour jitter), at 48 px (most task pages: 40 px):
# AU cues are a few pixels.

# %%
page.samples()

# %% [markdown]
# ## The grid: data regimes x initialisations x seeds
#
# The head: one linear layer on the pooled features, 12 intensities, L2 loss, Adam.

# %%
page.grid_section()

# %% [markdown]
# ## Results
#
# ICC(3,1) per AU and its mean over the 12 AUs, the headline, and the mean absolute error of
# the intensities (0-5). The `mean predictor` outputs each AU's mean training intensity: its ICC
# is 0.

# %%
page.results_section()

# %% [markdown]
# ## Does pretraining help, and where?
#
# Tables 1 and 2 of the supplement compare the authors' model with few-shot AU methods, not
# initialisations; they are shown at the end, as printed.

# %%
page.verdict_section()

# %% [markdown]
# ## The paper's numbers (as printed, not computed here)

# %%
page.paper()

# %%
page.footer()
