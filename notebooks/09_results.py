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
#     after: [03, 04, 05, 06, 07, 08]  # pages this one reads from (facelib book --jobs)
# ---

# %% [markdown]
# # Results
#
# Two summaries side by side. First ours: the five task pages' grids, read back from
# `results/`, and the paper's question asked of them: does our self-supervised pretraining
# on unlabelled faces start fine-tuning better than random initialisation, and than a
# pretraining on the same faces with their identity labels, per task and data regime, beyond
# the noise of the fine-tuning seeds? Then the paper's: the supplement's Tables 1-3 exactly
# as printed, their arithmetic checked, and where in Table 3 the claim holds. In the `demo`
# profile our runs are a miniature on synthetic faces (pages 03-08 say how small); they are
# kept apart from the paper's numbers, never mixed with them.

# %% tags=["parameters"]
from typing import Optional

profile = "demo"  # "demo" | "paper": which runs to gather
results_dir: Optional[str] = None  # None: results/ in the repository

# %%
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from facelib import book, results, viz
from facelib.tasks import compare, summary

root = book.find_root()
runs_dir = Path(results_dir) if results_dir else root / "results"

# %% [markdown]
# ## Ours: which initialisation wins where (demo)
#
# For each task, its headline metric (page 04-08) per initialisation and data regime: means
# over the fine-tuning seeds with two-standard-error bars.

# %%
grids = summary.collect_grids(runs_dir, profile)
if grids:
    viz.figure(summary.summary_figure(grids),
               "Each task's headline metric against the share of training "
               "labels, one line per initialisation (arrows: the better "
               "direction); means over the fine-tuning seeds, error bars two "
               "standard errors.")
else:
    display(Markdown(f"No finished runs under `{runs_dir}` in the "
                     f"`{profile}` profile yet: the task pages write them."))

# %% [markdown]
# Verdicts per task and regime: `ours` against `random` and against `supervised` on the
# task's headline metric; better or worse when the difference of the means exceeds two
# standard errors, otherwise equal (difference signed so that positive means `ours` is
# better, ± one standard error).

# %%
comparisons = compare.compare_all(grids)
if len(comparisons):
    display(viz.table(summary.verdict_table(comparisons),
                      "Our SwAV pretraining against random initialisation "
                      "and against the supervised pretraining, per task and "
                      "data regime."))
display(Markdown(summary.summary_text(comparisons)))

# %% [markdown]
# ## The paper's summary
#
# The supplement's tables, as printed. In Table 3 (AffectNet), the paper's own comparison
# of initialisations, `vggface` is the supervised pretraining on VGG-Face2 and `ours` the
# SwAV pretraining; Tables 1 and 2 compare the authors' model with few-shot AU methods.

# %% [markdown]
# ## Table 1: AU intensity on DISFA (paper, as printed)
#
# Few-shot AU intensity estimation, ICC per AU. KBSS, KJRE, CLFL and SSCFL
# {cite}`zhang2018kbss,zhang2019kjre,zhang2019clfl,sanchez2020sscfl` against the authors' model.

# %%
results.paper_table("disfa").style.hide(axis="index")

# %% [markdown]
# ## Table 2: AU intensity on BP4D (paper, as printed; the table says "BU4D")

# %%
results.paper_table("bp4d").style.hide(axis="index")

# %% [markdown]
# ## Checking the averages
#
# Recomputed here: the mean of each row's printed per-AU values, beside the printed average.
# Printed values have three decimals, so rounding alone explains a difference up to 0.001;
# larger differences are flagged.

# %%
checks = pd.concat(
    [results.au_means("disfa").assign(table="Table 1 (DISFA)"),
     results.au_means("bp4d").assign(table="Table 2 (BP4D)")]
).set_index(["table", "method"])
viz.flag_rows(checks, "mismatch")

# %%
flagged = checks[checks["mismatch"]]
display(Markdown("**Mismatches:** " + "; ".join(
    f"{t}, {m}: printed {r.printed}, recomputed {r.recomputed:.3f}"
    for (t, m), r in flagged.iterrows())))

# %% [markdown]
# ## Table 3: emotion recognition on AffectNet (paper, as printed)
#
# Accuracy of the expression classes; RMSE, SAGR, PCC and CCC {cite}`ringeval2015avec` of
# valence and arousal, for four initialisations and three data regimes.

# %%
results.paper_table("affectnet").style.hide(axis="index")

# %% [markdown]
# The text (4.1) says that "for all data regimes, our unsupervised models outperform the
# supervised baselines". Computed from the table, these are the cells where another
# initialisation does better than *ours*. At 2 % the supervised VGG-Face initialisation wins
# on accuracy and on both CCCs; the SAGR and RMSE cells show that no regime is won on every
# metric.

# %%
results.claim_check().style.hide(axis="index").format(precision=3)

# %% [markdown]
# ### Table 3 as a figure
#
# Choose the metric in the menu; one line per initialisation. Values are the paper's.

# %%
viz.metric_by_regime_figure(
    results.affectnet(),
    regime_order=["2%", "10%", "100%"],
    metrics=list(results.AFFECTNET_METRICS),
    metric_labels=results.AFFECTNET_METRICS,
    title="AffectNet (supplement Table 3)",
)

# %% [markdown]
# ## Every run
#
# Metrics of every run found under `results/` (computed by our code, not the paper's).

# %%
ours = results.collect(runs_dir)
if ours.empty:
    display(Markdown(f"No finished runs under `{runs_dir}` yet."))
for task, table in results.run_tables(ours).items():
    display(viz.table(table, f"{task}: {len(table)} runs."))
