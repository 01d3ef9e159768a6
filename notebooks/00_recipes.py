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
#     after: []  # pages this one reads from (facelib book --jobs)
# ---

# %% [markdown]
# # Recipes
#
# Every hyperparameter of the supplement's section 1 (implementation details), as
# `facelib.recipes` holds it and as every job, test and page reads it. Each value carries the
# section it comes from and its source: *supplement* (printed), *code* (not printed; taken from
# the authors' released code or the SwAV code it forks) or *convention* (given by neither; our
# choice, with a note). The `demo` profile changes sizes only; its values are shown beside the
# paper's.

# %% tags=["parameters"]
from typing import Optional

profile = "demo"  # "demo": CPU, minutes | "paper": the supplement's recipes
pretrain_images: Optional[int] = None  # per epoch; None: Full VGG-Face (3.4M)

# %%
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from facelib import recipes, viz

paper = recipes.pretrain("paper")
demo = recipes.pretrain("demo")
pd.set_option("display.max_colwidth", 160)

# %% [markdown]
# ## Unsupervised pretraining (supplement 1.1)
#
# SwAV {cite}`caron2020swav` on 64 GPUs with LARS {cite}`you2017lars`. The `demo` column shows
# where the laptop-sized profile differs.

# %%
viz.recipe_table(paper, demo)

# %% [markdown]
# ## Data preparation (supplement 1.1)
#
# Faces detected with RetinaFace {cite}`deng2019retinaface`, then cropped so that the face takes
# about 190 px of a 256x256 image.

# %%
viz.recipe_table(recipes.crop("paper"), recipes.crop("demo"))

# %% [markdown]
# ## Downstream tasks (supplement 1.2)
#
# One recipe per task. Epoch counts are ranges in the supplement ("depending on the data
# regime"); `epochs` is the value a run uses, set per regime.

# %%
for name in recipes.TASKS:
    task_paper = recipes.task(name, "paper")
    n = task_paper.num_gpus
    gpus = f"{n} GPU" + ("s" if n > 1 else "")
    display(Markdown(f"### {type(task_paper).__name__} ({gpus})"))
    display(viz.recipe_table(task_paper, recipes.task(name, "demo")))

# %% [markdown]
# ## Data sampling (supplement 1.3) and dataset sizes (supplement 2 and 3)

# %%
display(viz.recipe_table(recipes.sampling()))
viz.recipe_table(recipes.datasets())

# %% [markdown]
# ## The pretraining learning-rate schedule
#
# Linear warm-up from the released script's 0.3 to the peak of 4.8 over 10 epochs, then cosine
# decay to the final value, per iteration. The supplement says the rate is "decayed toward
# 0.045"; SwAV's own 200-epoch script uses 0.0048. The recipe keeps the supplement's 0.045.

# %%
images = pretrain_images or recipes.datasets().full_vggface_images
iters_per_epoch = images // paper.batch_size
lr = recipes.lr_schedule(paper, iters_per_epoch)
glue("iters_per_epoch", iters_per_epoch, display=False)
glue("total_iters", len(lr), display=False)
glue("peak_lr", float(lr.max()), display=False)
glue("last_lr", float(lr[-1]), display=False)
fig = viz.lr_schedule_figure(
    lr, iters_per_epoch, paper.warmup_epochs,
    title=f"{images:,} images, batch {paper.batch_size}")
viz.figure(fig, "The pretraining learning rate per iteration (paper recipe): "
           "linear warm-up to 4.8, then cosine decay to the supplement's "
           "0.045.")

# %% [markdown]
# With {glue:}`iters_per_epoch` iterations per epoch the run makes {glue:}`total_iters`
# optimiser steps; the rate peaks at {glue:}`peak_lr` at the end of the warm-up and the last
# step uses {glue:}`last_lr` (values computed above from the recipe).
