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
# # SwAV pretraining
#
# Supplement section 1.1: the unsupervised pretraining is SwAV {cite}`caron2020swav` on 64 GPUs,
# batch 4096 with synchronised batch norm, 200 epochs, LARS {cite}`you2017lars` with weight decay
# 1e-6, learning rate 4.8 warmed up over 10 epochs and decayed by a cosine toward 0.045,
# temperature 0.1, Sinkhorn epsilon 0.05, and 2 views of 224 px plus 6 of 96 px per image.
# `facelib.swav` implements that recipe; this page shows it, runs it and inspects the result.
# In the `demo` profile the same code pretrains a small ResNet on **synthetic faces**
# (`facelib.data.synth`) on the CPU in a few minutes, so every number below describes that
# demo run, not the paper's models. The `paper` profile submits the 64-GPU job through
# `facelib.launch` and reads its log once it exists.

# %% tags=["parameters"]
profile = "demo"  # "demo": CPU, minutes, synthetic faces | "paper": 64 GPUs through SLURM
run_dir: str | None = None  # the pretraining run's folder; None: results/swav_<profile> in the repository
train: bool = True  # demo: run (or resume) the pretraining in-process when the run is not finished
workers: int = 0  # data-loader workers of the in-process demo run
cluster: str | None = None  # paper: submit to this cluster profile (slurm/clusters.yaml); None: show the plan only
plan_cluster: str = "a100x8"  # paper: the cluster profile whose sbatch plan is shown
manifest: str | None = None  # paper: parquet manifest of the pretraining shards (facelib preprocess)
shards_root: str | None = None  # paper: folder the manifest's shard paths are relative to
heldout_faces: int = 400  # held-out synthetic faces for the retrieval probe
heldout_identities: int = 20  # persons among the held-out faces
bn_images: int = 256  # pretraining faces on which the probe's "precise BN" statistics are recomputed
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
from facelib.swav import figures, retrieval
from facelib.swav.data import synthetic_faces
from facelib.swav.model import SwAVModel, load_trunk
from facelib.swav.train import CHECKPOINT_NAME, LOG_NAME, TRUNK_NAME, DataSpec, PretrainJob, read_log
from facelib.swav.transforms import MultiCrop

recipe = recipes.pretrain(profile)
paper, demo = recipes.pretrain("paper"), recipes.pretrain("demo")
root = book.find_root()
run = Path(run_dir) if run_dir else root / "results" / f"swav_{profile}"
torch.manual_seed(0)
pd.set_option("display.max_colwidth", 120)

# %% [markdown]
# ## The recipe (supplement 1.1)
#
# Every value comes from `facelib.recipes`, with the section it is printed in or, for values the
# supplement does not print, the released code it comes from. The `demo` column shows where the
# demo profile differs: sizes (resolutions, prototypes, batch, epochs, images) and two changes
# explained in the recipe's notes. Because its batch is 32 images instead of 4096, the demo takes
# the learning rates of SwAV's own small-batch script (0.6 to 0.0006 without warm-up, as in SwAV's
# batch-256 script): with the paper's learning rate of 4.8 a batch of 32 sends the images to far
# fewer prototypes after the first epoch. And it has no colour jitter and no greyscale: with them,
# the hundred-odd CPU iterations of the demo never leave the degenerate state where every
# prototype scores every image alike (the loss stays at ln K in every demo size we measured; see
# the notes of `color_jitter_p` in the table), while without them the run learns (below).

# %%
viz.recipe_table(paper, demo)

# %% [markdown]
# ## The learning-rate schedule
#
# Per iteration: linear warm-up from 0.3 to 4.8, then a cosine toward the final value. The
# supplement says "decayed toward 0.045"; SwAV's own 200-epoch script decays to 0.0048. The recipe
# keeps the supplement's value. Drawn for this profile's run (images per epoch / batch).

# %%
images_per_epoch = recipe.train_images or recipes.datasets().full_vggface_images
iters_per_epoch = images_per_epoch // recipe.batch_size
schedule = recipes.lr_schedule(recipe, iters_per_epoch)
glue("iters_per_epoch", iters_per_epoch, display=False)
glue("total_iters", len(schedule), display=False)
fig = viz.lr_schedule_figure(schedule, iters_per_epoch, recipe.warmup_epochs,
                             title=f"{profile}: {images_per_epoch:,} images per epoch, batch {recipe.batch_size}")

# %% [markdown]
# {glue:}`iters_per_epoch` iterations per epoch, {glue:}`total_iters` in all.
#
# ## Multi-crop views
#
# Each face gives 2 large and 6 small views (RandomResizedCrop, flip, colour jitter, greyscale,
# Gaussian blur; `facelib.swav.transforms`; the demo draws no colour jitter or greyscale). The
# large views' codes are the targets every other view predicts. Drawn before normalisation, at
# their sizes in this profile. The synthetic faces are cut like the paper's pretraining images:
# the face box spans 190 of 256 pixels (`facelib.swav.data.synthetic_faces`).

# %%
faces = synthetic_faces(views_faces, seed=2, size=recipe.input_size)
multicrop = MultiCrop.from_recipe(recipe)
originals = [faces[i][0] for i in range(views_faces)]
views = [multicrop(img, np.random.default_rng(i), normalize=False) for i, img in enumerate(originals)]
fig = figures.multicrop_figure(originals, views, title="synthetic faces (demo data)" if profile == "demo" else "")

# %% [markdown]
# ## The run
#
# In the `demo` profile the page runs `PretrainJob`, the job `facelib pretrain` and the launcher
# run, in this process: it resumes from the run's last checkpoint if an earlier execution was
# interrupted and does nothing if the run has finished. The same run from the command line:
# `facelib pretrain --profile demo --out results/swav_demo` (and `--resume` after an interruption).
# In the `paper` profile the page submits the 64-GPU job once (`--cluster` on the command line)
# or shows its sbatch plan.

# %%
finished = (run / TRUNK_NAME).is_file()
if profile == "demo":
    if train and not finished:
        job = PretrainJob(recipe, str(run), DataSpec("synthetic"), num_workers=workers,
                          resume=(run / CHECKPOINT_NAME).is_file(), progress=False)
        display(job())
elif cluster is not None:
    if manifest is None or shards_root is None:
        raise ValueError("the paper profile needs manifest and shards_root (notebooks/profiles/paper.yaml)")
    job = PretrainJob(recipe, str(run), DataSpec("shards", manifest=manifest, root=shards_root))
    res = launch.resources("pretrain", profile, cluster, recipe=recipe)
    display(launch.submit_once(job, run=run.name, on=cluster, res=res, results_root=run.parent,
                               done_file=TRUNK_NAME))
else:
    print(launch.plan("pretrain", profile, plan_cluster).summary())
has_log = (run / LOG_NAME).is_file()
display(Markdown(f"Run folder: `{run}`; log present: **{has_log}**, finished: **{(run / TRUNK_NAME).is_file()}**."))

# %% [markdown]
# ## Loss, learning rate and prototype usage
#
# From the run's JSON-lines log. The dashed line is ln K, the loss of a network that predicts
# every prototype equally: a collapsed run sits on it. The usage entropy is the entropy of the
# hard assignments (argmax over prototypes) of the large views in each logging window; ln K
# means every prototype is used equally, 0 that every image goes to one prototype. The score
# spread is the standard deviation of an image's scores over the K prototypes: when it falls
# toward 0 every prototype scores every image alike, the codes and predictions turn uniform and
# the loss settles on ln K, a degenerate state in which the embeddings sit in directions the
# prototypes do not cover (with K prototypes in a D-dimensional embedding, the fewer prototypes
# per dimension, the easier it is to find one).

# %%
iters = read_log(run, "iter") if has_log else []
epochs = read_log(run, "epoch") if has_log else []
if iters:
    fig = figures.training_curves_figure(iters, recipe.num_prototypes)
    columns = ["epoch", "loss", "lr", "code_entropy", "score_spread", "usage_entropy", "prototypes_used",
               "images_per_s"]
    table = pd.DataFrame(epochs).reindex(columns=columns).set_index("epoch")
    display(table.round(3))
    first, last = epochs[0], epochs[-1]
    glue("first_loss", round(first["loss"], 3), display=False)
    glue("last_loss", round(last["loss"], 3), display=False)
    glue("ln_k", round(math.log(recipe.num_prototypes), 3), display=False)
    glue("usage_entropy", round(last["usage_entropy"], 3), display=False)
    glue("usage_fraction", f"{last['usage_entropy'] / math.log(recipe.num_prototypes):.0%}", display=False)
    glue("prototypes_used", f"{last['prototypes_used']} of {recipe.num_prototypes}", display=False)
    spread = last["usage_entropy"] > 0.5 * math.log(recipe.num_prototypes) and \
        last["prototypes_used"] >= recipe.num_prototypes // 4
    glue("collapse_verdict", "no collapse onto a few prototypes" if spread
         else "signs of collapse onto a few prototypes (check the run)", display=False)
    ln_k = math.log(recipe.num_prototypes)
    below = last["loss"] < 0.98 * ln_k
    falling = last["loss"] < epochs[len(epochs) // 2]["loss"] - 0.01
    glue("plateau_verdict", ("below ln K: the views predict each other's codes better than chance"
                             + (", and still falling" if falling else ", and no longer falling")) if below
         else ("above ln K: the predictions are still worse than uniform ones" if last["loss"] > 1.02 * ln_k
               else "at ln K: codes and predictions are close to uniform, the views do not predict each "
                    "other's codes better than chance"), display=False)
    spread0, spread1 = first.get("score_spread"), last.get("score_spread")
    glue("spread_first", "n/a" if spread0 is None else round(spread0, 3), display=False)
    glue("spread_last", "n/a" if spread1 is None else round(spread1, 3), display=False)
else:
    display(Markdown("No log yet: the curves appear once the job has written `log.jsonl`."))
    for name in ("first_loss", "last_loss", "ln_k", "usage_entropy", "usage_fraction", "prototypes_used",
                 "collapse_verdict", "plateau_verdict", "spread_first", "spread_last"):
        glue(name, "n/a", display=False)

# %% [markdown]
# The epoch-mean loss went from {glue:}`first_loss` in the first epoch to {glue:}`last_loss` in the
# last, {glue:}`plateau_verdict` (ln K = {glue:}`ln_k`). In the last epoch the hard assignments
# used {glue:}`prototypes_used` prototypes with an entropy of {glue:}`usage_entropy` nats,
# {glue:}`usage_fraction` of the maximum: {glue:}`collapse_verdict` (our criterion: more than half
# the maximum entropy and at least a quarter of the prototypes used). The score spread went from
# {glue:}`spread_first` in the first epoch to {glue:}`spread_last` in the last.
#
# ## Nearest-neighbour retrieval by identity
#
# A label-free probe of what the trunk learnt: held-out synthetic faces (persons never seen in
# pretraining) are embedded with the trunk's pooled features; for each face we ask whether its
# nearest other face (cosine similarity) shows the same person, and how highly the person's other
# faces rank (mean average precision). The pretrained trunk is compared with the same network at
# its random initialisation, the starting point of the run, in two ways: with the BatchNorm
# statistics each trunk carries (the pretrained trunk's running averages mix its large and small
# crop resolutions; the random trunk has none: mean 0, variance 1), and with the statistics of
# both recomputed on pretraining faces at the probe's size ("precise BN", no labels used).

# %%
if (run / TRUNK_NAME).is_file():
    held = synthetic_faces(heldout_faces, seed=1, size=recipe.input_size, num_identities=heldout_identities)
    held_images = [held[i][0] for i in range(len(held))]
    held_ids = [held[i][1]["identity"] for i in range(len(held))]
    bn_faces = synthetic_faces(min(bn_images, recipe.train_images or bn_images), seed=0, size=recipe.input_size)
    bn_images_list = [bn_faces[i][0] for i in range(len(bn_faces))]
    size = recipe.size_crops[0]
    trained = load_trunk(recipe.arch, run / TRUNK_NAME)
    trained.fc = torch.nn.Identity()
    torch.manual_seed(recipe.seed)
    initial = SwAVModel.from_recipe(recipe).trunk  # the run's starting weights
    rows = {}
    for name, trunk in (("pretrained (SwAV)", trained), ("random initialisation", initial)):
        rows[(name, "running statistics")] = retrieval.retrieval_scores(
            retrieval.embed(trunk, held_images, size, recipe.mean, recipe.std), held_ids)
        recomputed = retrieval.precise_bn(trunk, bn_images_list, size, recipe.mean, recipe.std)
        rows[(name, "precise BN")] = retrieval.retrieval_scores(
            retrieval.embed(recomputed, held_images, size, recipe.mean, recipe.std), held_ids)
    scores = pd.DataFrame(rows).T.rename(columns={"top1": "top-1 accuracy", "map": "mAP",
                                                    "chance_top1": "chance top-1"})
    scores.index.names = ["trunk", "BN statistics"]
    display(scores.round(3))
    top1 = scores["top-1 accuracy"]
    n_held = len(held_ids)
    for key, bn in (("", "running statistics"), ("_pbn", "precise BN")):
        t, r_ = top1[("pretrained (SwAV)", bn)], top1[("random initialisation", bn)]
        # two standard errors of the difference of two accuracies on n_held faces
        margin = 2 * math.sqrt((t * (1 - t) + r_ * (1 - r_)) / n_held)
        glue(f"top1_trained{key}", f"{t:.1%}", display=False)
        glue(f"top1_random{key}", f"{r_:.1%}", display=False)
        glue(f"retrieval_verdict{key}", "better than" if t - r_ > margin else "worse than" if r_ - t > margin
             else f"indistinguishable from (difference {t - r_:+.1%}, within the {margin:.1%} this probe resolves)",
             display=False)
    glue("top1_chance", f"{scores['chance top-1'].iloc[0]:.1%}", display=False)
    wins = [bn for bn in ("running statistics", "precise BN")
            if top1[("pretrained (SwAV)", bn)] - top1[("random initialisation", bn)]
            > 2 * math.sqrt(sum(v * (1 - v) for v in top1.xs(bn, level=1)) / n_held)]
    glue("retrieval_summary", "The pretraining helps this probe with " + " and ".join(wins) + "." if wins else
         "So what the run has learnt to match between the views of an image is not (yet) what tells these "
         "persons apart better than a random network does.", display=False)
else:
    display(Markdown("The run has not finished: no trunk to probe yet."))
    for name in ("top1_trained", "top1_random", "top1_chance", "retrieval_verdict", "top1_trained_pbn",
                 "top1_random_pbn", "retrieval_verdict_pbn", "retrieval_summary"):
        glue(name, "n/a", display=False)

# %% [markdown]
# Top-1 identity retrieval with the trunks' own BN statistics: {glue:}`top1_trained` with the
# pretrained trunk against {glue:}`top1_random` at random initialisation (chance
# {glue:}`top1_chance`): the pretrained trunk is {glue:}`retrieval_verdict` its starting point
# (our criterion: a difference larger than two standard errors). With precise BN:
# {glue:}`top1_trained_pbn` against {glue:}`top1_random_pbn`, {glue:}`retrieval_verdict_pbn`.
# {glue:}`retrieval_summary` What tells the synthetic persons apart is mostly colour (skin,
# hair, eyes, lips), hair style, glasses and beard, while every image has its own background,
# lighting, pose and expression (`facelib.data.synth`). A random network's features already
# carry colour, and in eval mode with its initial BN statistics (mean 0, variance 1) they are not
# normalised per channel, which keeps the absolute colour of skin and hair: a strong baseline
# for these persons. In the demo profile these are synthetic faces and about a hundred
# iterations of CPU training: the page shows the pipeline end to end, not what SwAV learns in
# 200 epochs at batch 4096.
#
# ## Using the pretrained trunk
#
# `trunk.pth` is a plain torchvision state dict (no `fc`); `facelib.swav.load_trunk(arch, path)`
# also reads the authors' released checkpoints (`flr_r50_vgg_face.pth`, keys `module.base_net.*`),
# which is how the fine-tuning pages start from them.
