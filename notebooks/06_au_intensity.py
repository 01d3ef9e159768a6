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
# for each data regime and initialisation.
#
# In the `demo` profile the grid runs here, on the CPU, on **synthetic faces**
# (`facelib.data.synth`) whose labels come from the renderer; its initialisations come from
# page 03. Our numbers describe that toy setting, not the paper's datasets; the paper's
# numbers are shown apart, as printed. The `paper` profile reads (or, with `cluster`,
# submits) the same grid on SLURM.

# %% tags=["parameters"]
from typing import Optional

profile = "demo"  # "demo": the grid trains here | "paper": the SLURM grid
cluster: Optional[str] = None  # slurm/clusters.yaml profile to submit to
results_dir: Optional[str] = None  # None: results/ in the repository
regimes: list = [1.0, 0.1, 0.02, 0.01]  # shares of the training labels
seeds: Optional[list] = None  # fine-tuning seeds; None: the recipe's
n_train: int = 1000  # synthetic training faces (demo)
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
from IPython.display import Markdown, display

from facelib.tasks.page import TaskPage

page = TaskPage(
    "au", profile=profile, regimes=regimes, seeds=seeds,
    results_dir=results_dir, n_train=n_train, n_test=n_test,
    image_size=image_size, num_identities=num_identities,
    overrides=overrides, cluster=cluster, swav_trunk=swav_trunk,
    supervised_trunk=supervised_trunk, imagenet_weights=imagenet_weights,
    authors_weights=authors_weights, threads=threads)

# %% [markdown]
# ## The recipe
#
# Every value comes from `facelib.recipes` with the section of the supplement it is printed
# in; `convention` marks what the supplement does not give. The demo column shows what the
# demo profile changes: sizes, and the changes its notes explain with their measurements.

# %%
page.recipe()

# %% [markdown]
# ## Augmented inputs

# %%
page.samples()

# %% [markdown]
# ## The grid: data regimes x initialisations x seeds
#
# Each data regime keeps a fixed, label-agnostic prefix of one seeded permutation of the
# training set (`facelib.data.sampling`, supplement 1.3); the fewer the labels, the more
# epochs (`recipes.regime_epochs`: the supplement's range, from its lower end at 100 % to its
# upper end at 1 %). Each run starts the same ResNet from one initialisation: `random`,
# `supervised` (trained on the identity labels of the pretraining faces, page 03: the
# paper's supervised baseline), `ours` (SwAV on the same faces without their labels, page
# 03) and, when their weights files are given, `imagenet` and the authors' released model.
# Every cell is run with several fine-tuning seeds (head initialisation, data order,
# augmentation and the random trunk). Runs resume: a finished run is read back.

# %%
grid = page.run()
page.runs_table()

# %%
page.curves()

# %% [markdown]
# ## Results
#
# On held-out synthetic faces. Our numbers describe this toy setting (CPU, minutes, a narrow
# ResNet-18 on 40-pixel faces), not the paper's real datasets.

# %%
page.results_table()

# %%
page.figure()

# %% [markdown]
# ## Does pretraining help, and where?
#
# The paper's claim, per data regime: our SwAV pretraining against random initialisation
# and against the supervised pretraining on the same faces. A difference counts when it
# exceeds two standard errors of the difference of the means over the seeds.

# %%
page.comparison()

# %%
display(Markdown(page.verdict()))

# %% [markdown]
# ## The paper's numbers (as printed, not computed here)

# %%
page.paper()

# %%
display(Markdown(page.footer()))
