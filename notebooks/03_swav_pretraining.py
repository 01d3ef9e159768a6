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
# # SwAV pretraining
#
# Supplement section 1.1: the unsupervised pretraining is SwAV {cite}`caron2020swav` on 64
# GPUs, batch 4096 with synchronised batch norm, 200 epochs, LARS {cite}`you2017lars` with
# weight decay 1e-6, learning rate 4.8 warmed up over 10 epochs and decayed by a cosine toward
# 0.045, temperature 0.1, Sinkhorn epsilon 0.05, and 2 views of 224 px plus 6 of 96 px per
# image. `facelib.swav` implements that recipe. The paper compares it with a network
# pretrained **with** identity labels (its supervised VGG-Face baseline); here the same loop
# trains that baseline too (`recipes.Pretrain.method = "supervised"`), on the same faces with
# the same trunk, augmentations, optimiser and schedule: only the objective differs.
#
# In the `demo` profile both run on the CPU in a few minutes on **synthetic faces**
# (`facelib.data.synth`): 4,096 faces of 256 persons who differ in face shape and
# proportions, skin, eyes, brows, nose, mouth, hair and facial hair, each face with its own
# pose, expression, glasses, background, clothing and light. Then a probe asks what each
# trunk has learnt to keep and to ignore on persons it has never seen. Every number below
# describes that demo, not the paper's models. The `paper` profile submits the 64-GPU job
# through `facelib.launch` and reads its log once it exists.

# %% tags=["parameters"]
from typing import Optional

profile = "demo"  # "demo": CPU, minutes, synthetic faces | "paper": 64 GPUs
run_dir: Optional[str] = None  # SwAV run; None: results/swav_<profile>
supervised_dir: Optional[str] = None  # None: results/supervised_<profile>
train: bool = True  # demo: run (or resume) both pretrainings here
workers: int = 1  # loader workers of the demo runs (crops beside the step)
processes: int = 2  # demo: pretrainings run at once (SwAV, supervised)
cluster: Optional[str] = None  # paper: a slurm/clusters.yaml profile
plan_cluster: str = "a100x8"  # paper: the cluster whose sbatch plan is shown
manifest: Optional[str] = None  # paper: parquet manifest of the shards
shards_root: Optional[str] = None  # paper: folder of the manifest's shards
probe_seeds: list = [101, 102, 103]  # one probe set per seed (other persons)
probe_persons: int = 20  # held-out persons per probe set
probe_scenes: int = 20  # scenes per probe set (every person in every scene)
bn_images: int = 512  # unlabelled faces for the probe's BatchNorm statistics
views_faces: int = 3  # faces whose multi-crop views are drawn

# %%
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display
from myst_nb import glue

from facelib import book, launch, recipes, viz
from facelib.swav import figures, probe
from facelib.swav.data import synthetic_faces
from facelib.swav.model import SwAVModel, load_trunk
from facelib.swav.train import (CHECKPOINT_NAME, LOG_NAME, TRUNK_NAME,
                                DataSpec, PretrainJob, read_log,
                                run_jobs)
from facelib.swav.transforms import MultiCrop

recipe = recipes.pretrain(profile)
supervised = recipes.pretrain(profile, method="supervised")
paper, demo = recipes.pretrain("paper"), recipes.pretrain("demo")
root = book.find_root()
run = Path(run_dir) if run_dir else root / "results" / f"swav_{profile}"
sup_run = (Path(supervised_dir) if supervised_dir
           else root / "results" / f"supervised_{profile}")
torch.manual_seed(0)

# %% [markdown]
# ## The recipe (supplement 1.1)
#
# Every value comes from `facelib.recipes`, with the section it is printed in or, for values
# the supplement does not print, the released code it comes from. The `demo` column shows
# where the demo profile differs. Sizes: a ResNet-18 of a quarter of the usual width on
# 40-pixel faces, 2 views of 32 px and 4 of 16 px, batch 64 on one CPU process, 1,000
# prototypes, 4,096 faces, 24 epochs. And four changes that are not sizes, each measured on
# this demo (the notes of the fields give the numbers): the views' scale ranges (0.4-1 and
# 0.1-0.4 of the image instead of 0.14-1 and 0.05-0.14: a 32-pixel view of a few percent of
# a 40-pixel face shows one or two pixels of it), the colour jitter at half the paper's
# strength (0.4, 0.4, 0.4, 0.1; the greyscale and its probabilities as printed), the
# learning rate 2.4 decayed to 0.0024 without warm-up (batch 64 instead of 4096), and the
# softmax temperature 0.2 instead of 0.1.

# %%
viz.recipe_table(paper, demo)

# %% [markdown]
# ## The learning-rate schedule
#
# Per iteration: linear warm-up from 0.3 to 4.8, then a cosine toward the final value. The
# supplement says "decayed toward 0.045"; SwAV's own 200-epoch script decays to 0.0048. The
# paper recipe keeps the supplement's value. Drawn for this profile's run.

# %%
images_per_epoch = (recipe.train_images
                    or recipes.datasets().full_vggface_images)
iters_per_epoch = images_per_epoch // recipe.batch_size
schedule = recipes.lr_schedule(recipe, iters_per_epoch)
glue("iters_per_epoch", iters_per_epoch, display=False)
glue("total_iters", len(schedule), display=False)
viz.figure(viz.lr_schedule_figure(
    schedule, iters_per_epoch, recipe.warmup_epochs,
    title=f"{profile}: {images_per_epoch:,} images per epoch, "
          f"batch {recipe.batch_size}"),
    "The learning rate of every iteration of this profile's run.")

# %% [markdown]
# {glue:}`iters_per_epoch` iterations per epoch, {glue:}`total_iters` in all.
#
# ## The probe: held-out persons crossed with scenes
#
# To ask what a trunk has learnt, the probe sets every held-out person in every scene. A
# scene is what photos taken together share and a face does not own: the background's
# colours, the clothing, the exposure, the white balance and the direction of the light.
# Pose, expression, glasses, occlusion, blur, noise, compression and the framing of the crop
# are drawn for every image (`facelib.swav.probe`). Identity and scene are therefore
# independent: a representation that retrieves a face's **person** among faces of the same
# scene has learnt faces; one that retrieves its **scene** has learnt the photo.

# %%
if profile == "demo":
    shown = probe.probe_set(6, 6, probe_seeds[0], 64)
    viz.figure(figures.probe_grid_figure(shown),
               "Six held-out persons (rows) in six scenes (columns) of a "
               "probe set (rendered at 64 px here; the probe uses the "
               "pretraining's 40 px).")

# %% [markdown]
# ## Multi-crop views
#
# Each face gives 2 large and 4 small views (the paper: 2 and 6): random resized crops,
# flips, colour jitter, greyscale and Gaussian blur (`facelib.swav.transforms`). The large
# views' codes are the targets every other view predicts. Drawn before normalisation, at
# their sizes in this profile; the faces are cut like the paper's pretraining images: the
# face box spans 190 of 256 pixels (`facelib.swav.data.synthetic_faces`).

# %%
faces = synthetic_faces(views_faces, seed=2, size=recipe.input_size)
multicrop = MultiCrop.from_recipe(recipe)
originals = [faces[i][0] for i in range(views_faces)]
views = [multicrop(img, np.random.default_rng(i), normalize=False)
         for i, img in enumerate(originals)]
viz.figure(figures.multicrop_figure(
    originals, views,
    title="synthetic faces (demo data)" if profile == "demo" else ""),
    "Each face (left) and its multi-crop views, before normalisation.")

# %% [markdown]
# ## The runs
#
# In the `demo` profile the page runs `PretrainJob`, the job `facelib pretrain` and the
# launcher run, once with SwAV and once supervised, both at once in two processes on this
# machine, the supervised one at a lower priority so that SwAV, the longer, keeps its pace
# (`run_jobs`; `processes=1`: one after the other, the same trunks): each resumes from its
# last checkpoint if an earlier execution was interrupted and does nothing if it has
# finished. From the command line: `facelib pretrain --profile demo` and
# `facelib pretrain --profile demo --set method=supervised --out
# results/supervised_demo`. In the `paper` profile the page submits the 64-GPU SwAV job
# once (`cluster`) or shows its sbatch plan.

# %%
data = DataSpec("synthetic")
if profile == "demo":
    todo = [(r, out) for r, out in ((recipe, run), (supervised, sup_run))
            if train and not (out / TRUNK_NAME).is_file()]
    jobs = [PretrainJob(r, str(out), data, num_workers=workers,
                        resume=(out / CHECKPOINT_NAME).is_file(),
                        progress=False)
            for r, out in todo]
    for result in run_jobs(jobs, processes):
        display(result)
elif cluster is not None:
    if manifest is None or shards_root is None:
        raise ValueError("the paper profile needs manifest and shards_root "
                         "(notebooks/profiles/paper.yaml)")
    job = PretrainJob(recipe, str(run), DataSpec("shards", manifest=manifest,
                                                 root=shards_root))
    res = launch.resources("pretrain", profile, cluster, recipe=recipe)
    display(launch.submit_once(job, run=run.name, on=cluster, res=res,
                               results_root=run.parent, done_file=TRUNK_NAME))
else:
    print(launch.plan("pretrain", profile, plan_cluster).summary())
has_log = (run / LOG_NAME).is_file()
display(Markdown(
    f"SwAV run: `{run}`; finished: **{(run / TRUNK_NAME).is_file()}**. "
    f"Supervised run: `{sup_run}`; finished: "
    f"**{(sup_run / TRUNK_NAME).is_file()}**."))

# %% [markdown]
# ## Loss, learning rate and prototype usage
#
# From the SwAV run's JSON-lines log. The dashed line is ln K, the loss of a network that
# predicts every prototype equally: a collapsed run sits on it. The usage entropy is the
# entropy of the hard assignments (argmax over prototypes) of the large views in each
# logging window; ln K means every prototype is used equally. The score spread is the
# standard deviation of an image's scores over the K prototypes: when it falls toward 0,
# every prototype scores every image alike, the codes turn uniform and the loss settles on
# ln K.

# %%
epochs = read_log(run, "epoch") if has_log else []
if epochs:
    viz.figure(figures.training_curves_figure(read_log(run, "iter"),
                                              recipe.num_prototypes),
               "SwAV loss, learning rate and prototype usage per logging "
               "window.")
    columns = ["loss", "lr", "code_entropy", "score_spread", "usage_entropy",
               "prototypes_used", "images_per_s"]
    every = max(1, len(epochs) // 8)
    shown_epochs = pd.DataFrame(
        epochs[::every] + ([epochs[-1]] if (len(epochs) - 1) % every else []))
    display(viz.table(shown_epochs.set_index("epoch").reindex(columns=columns),
                      "Every few epochs of the SwAV run (from its log)."))
    first, last = epochs[0], epochs[-1]
    ln_k = math.log(recipe.num_prototypes)
    glue("first_loss", round(first["loss"], 3), display=False)
    glue("last_loss", round(last["loss"], 3), display=False)
    glue("ln_k", round(ln_k, 3), display=False)
    used = f"{last['prototypes_used']} of {recipe.num_prototypes}"
    glue("prototypes_used", used, display=False)
    glue("usage_fraction", f"{last['usage_entropy'] / ln_k:.0%}",
         display=False)
    glue("plateau_verdict",
         "below ln K: the views predict each other's codes better than chance"
         if last["loss"] < 0.98 * ln_k else
         "at or above ln K: the views do not predict each other's codes "
         "better than chance", display=False)
    speed = np.mean([e["images_per_s"] for e in epochs[1:] or epochs])
    glue("speed", f"{speed:.0f}", display=False)
else:
    display(Markdown("No log yet: the curves appear once the job has written "
                     "`log.jsonl`."))
    for name in ("first_loss", "last_loss", "ln_k", "prototypes_used",
                 "usage_fraction", "plateau_verdict", "speed"):
        glue(name, "n/a", display=False)

# %% [markdown]
# The epoch-mean loss went from {glue:}`first_loss` in the first epoch to
# {glue:}`last_loss` in the last, {glue:}`plateau_verdict` (ln K = {glue:}`ln_k`). In the
# last epoch the hard assignments used {glue:}`prototypes_used` prototypes, with
# {glue:}`usage_fraction` of the maximum entropy. The run trained at {glue:}`speed` images
# per second (`benchmarks/bench_swav_demo_loop.py` compares this loop with the one it
# replaced).
#
# ## What the trunks learnt: identity kept, scene ignored?
#
# Four representations of every probe set: our SwAV trunk, the supervised trunk, the same
# network at a fresh random initialisation (one per probe seed), and raw pixels (16 x 16
# thumbnails). Each trunk's BatchNorm statistics are first recomputed on unlabelled
# pretraining faces ("precise BN"), so that all are read on the same footing. For each
# image: is its nearest other image (cosine similarity of the pooled features) the same
# person? The same scene? And a linear probe: a logistic regression on the features of half
# the scenes predicts the person in the other half. Means over the probe seeds (other
# persons and scenes each time) with their standard errors.

# %%
if (run / TRUNK_NAME).is_file():
    trunks = {}
    for name, folder in (("ours (SwAV)", run), ("supervised", sup_run)):
        if (folder / TRUNK_NAME).is_file():
            net = load_trunk(recipe.arch, folder / TRUNK_NAME)
            net.fc = torch.nn.Identity()
            trunks[name] = net

    bn_faces = synthetic_faces(bn_images, seed=0, size=recipe.input_size,
                               num_identities=recipe.synthetic_identities)
    scores = probe.run_probes(
        trunks, probe_seeds, probe_persons, probe_scenes, recipe.input_size,
        recipe.mean, recipe.std,
        [bn_faces[i][0] for i in range(len(bn_faces))],
        random_init=(recipe.arch, recipe.width))
else:
    scores = pd.DataFrame()
    display(Markdown("The run has not finished: no trunk to probe yet."))

# %%
if len(scores):
    chance = scores[["identity_chance", "identity_linear_chance",
                     "scene_chance"]].mean()
    display(viz.table(
        probe.summary(scores),
        f"Probe scores, mean ± standard error over {len(probe_seeds)} probe "
        f"sets of {probe_persons} held-out persons x {probe_scenes} scenes. "
        f"Chance: identity k-NN {chance['identity_chance']:.3f}, linear "
        f"probe {chance['identity_linear_chance']:.3f}, scene k-NN "
        f"{chance['scene_chance']:.3f}.", index=False))
    viz.figure(figures.probe_figure(scores, probe.ORDER),
               "Probe scores per representation (bars: means over the probe "
               "sets, error bars: two standard errors; dashed: chance). "
               "Identity: higher means the person is kept; scene: lower means "
               "the scene is ignored.")

# %% [markdown]
# ### The verdicts
#
# Differences are paired by probe set (the same persons and scenes for both
# representations); a difference counts when it exceeds two standard errors of the mean
# difference over the probe sets.

# %%
if len(scores):
    pairs = probe.comparisons(scores)
    display(viz.table(
        pairs[["a", "b", "measure", "mean_a", "mean_b", "difference ± se",
               "verdict"]],
        "Our SwAV trunk against each other representation: paired difference "
        "(a - b) ± its standard error, and the verdict (higher / lower beyond "
        "two standard errors, else equal).", index=False))
    display(Markdown(probe.verdict(scores)))

# %% [markdown]
# ## Using the pretrained trunks
#
# `trunk.pth` is a plain torchvision state dict (no `fc`), for both runs;
# `facelib.swav.load_trunk(arch, path)` reads it (and the authors' released checkpoints,
# `flr_r50_vgg_face.pth`, keys `module.base_net.*`), which is how the fine-tuning pages 04-08
# start from them: `ours` is the SwAV trunk, `supervised` the other.
