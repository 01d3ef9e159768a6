"""One task page: what the five task pages (notebooks 04-08) share, as a handful of calls.

A task page is its prose, its ``parameters`` cell and these calls on a :class:`TaskPage`:

* :meth:`~TaskPage.recipe` and :meth:`~TaskPage.samples`: the recipe beside the demo's and the
  augmented inputs;
* :meth:`~TaskPage.run`: the grid of data regime x initialisation x fine-tuning seed
  (:func:`facelib.tasks.grid.page_grid`: in this process for the demo, as SLURM job arrays for
  the paper profile), and in the demo the trivial predictor of every regime;
* :meth:`~TaskPage.curves`, :meth:`~TaskPage.results_table`, :meth:`~TaskPage.figure` (the
  paper's figure: the headline metric against the data regime, one line per initialisation,
  with error bars), :meth:`~TaskPage.comparison` and :meth:`~TaskPage.verdict` (ours against
  random and against supervised, per regime, better / equal / worse beyond two standard
  errors: :mod:`facelib.tasks.compare`), :meth:`~TaskPage.ced` and :meth:`~TaskPage.paper`.

Every sentence :meth:`~TaskPage.verdict` writes is computed from the runs on the page.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from facelib import book, recipes, viz
from facelib.data import sampling
from facelib.tasks import baseline as BL
from facelib.tasks import compare as C
from facelib.tasks import finetune as FT
from facelib.tasks import grid as G
from facelib.tasks import plots

__all__ = ["TaskPage", "TITLES", "INIT_ORDER", "PAIRS"]

#: Each task's name on the page.
TITLES: dict[str, str] = {
    "recognition": "Face recognition",
    "landmarks": "Facial landmark localisation",
    "au": "AU intensity estimation",
    "emotion": "Emotion recognition",
    "recon3d": "3D face reconstruction",
}
#: The initialisations in the order the pages list them (the paper's tables' order).
INIT_ORDER = ("random", "imagenet", "supervised", "authors", "ours")
#: The comparisons every page computes: (a, b) reads "a against b".
PAIRS = (("ours", "random"), ("ours", "supervised"))
_COLORS = {"random": "#7f7f7f", "imagenet": "#2ca02c", "supervised": "#1f77b4", "authors": "#9467bd",
           "ours": "#d62728"}
_BASELINE_NAME = {"recognition": "chance"}


def _paper_recognition() -> list[tuple[str, pd.DataFrame]]:
    return []


def _paper_landmarks() -> list[tuple[str, pd.DataFrame]]:
    return [("The authors' VGG-Face-pretrained model on COFW, from the public leaderboard "
             "(paperswithcode.com, 'Pre-training strategies and datasets for facial representation "
             "learning'); the main body's landmark tables are not in the supplement.",
             pd.DataFrame([{"dataset": "COFW", "metric": "NME, inter-ocular (%)",
                            "init": "ours (VGG-Face SwAV)", "value": 3.32}]))]


def _paper_au() -> list[tuple[str, pd.DataFrame]]:
    from facelib import results
    return [("Supplement Table 1 (DISFA), ICC per AU, as printed.", results.paper_table("disfa")),
            ("Supplement Table 2 (BP4D, printed 'BU4D'), ICC per AU, as printed.", results.paper_table("bp4d"))]


def _paper_emotion() -> list[tuple[str, pd.DataFrame]]:
    from facelib import results
    return [("Supplement Table 3 (AffectNet), as printed: the paper's own comparison of initialisations "
             "per data amount.", results.paper_table("affectnet"))]


def _paper_recon3d() -> list[tuple[str, pd.DataFrame]]:
    return []


_PAPER: dict[str, Callable[[], list[tuple[str, pd.DataFrame]]]] = {
    "recognition": _paper_recognition, "landmarks": _paper_landmarks, "au": _paper_au,
    "emotion": _paper_emotion, "recon3d": _paper_recon3d,
}


def _pct(regime: float) -> str:
    return sampling.regime_name(regime)


def _markdown(text: str) -> None:
    from IPython.display import Markdown, display
    display(Markdown(text))


#: The explanations every task page shows above its sections (the pages add what is the task's own).
RECIPE_TEXT = ("Every value comes from `facelib.recipes` with the section of the supplement it is printed in; "
               "`convention` marks what the supplement does not give. The demo column shows what the demo "
               "profile changes: sizes, and the changes its notes explain with their measurements.")
GRID_TEXT = (
    "Each data regime keeps a fixed, label-agnostic prefix of one seeded permutation of the training set "
    "(`facelib.data.sampling`, supplement 1.3); the fewer the labels, the more epochs "
    "(`recipes.regime_epochs`: the supplement's range, from its lower end at 100 % to its upper end at 1 %). "
    "Each run starts the same ResNet from one initialisation: `random`, `supervised` (trained on the identity "
    "labels of page 03's pretraining faces: the paper's supervised baseline), `ours` (SwAV on the same faces "
    "without their labels, page 03) and, when their weights files are given, `imagenet` and the authors' "
    "released model. Every cell is run with {seeds} fine-tuning seed(s) (head initialisation, data order, "
    "augmentation and, for `random`, the trunk). Runs resume: a finished run is read back from `results/`.")
RESULTS_TEXT = ("Mean ± standard error over the fine-tuning seeds, on held-out faces. In the `demo` profile they "
                "describe a toy setting (CPU, minutes, a narrow ResNet-18 on small synthetic faces), not the "
                "paper's datasets.")
VERDICT_TEXT = ("The paper's claim, per data regime: our SwAV pretraining against random initialisation and "
                "against the supervised pretraining on the same faces, on the task's headline metric. A "
                "difference counts when it exceeds two standard errors of the difference of the means over "
                "the seeds; every sentence below is computed from the table.")


class TaskPage:
    """The shared body of a task page (see the module docstring).

    Args:
        task: one of ``recipes.TASKS``.
        profile: ``demo`` (the grid trains here on synthetic faces) or ``paper`` (reads, or with
            ``cluster`` submits, the SLURM grid).
        regimes: fractions of the training labels (supplement 1.3; default
            ``recipes.finetune(profile).regimes``). A regime the training set
            cannot make (e.g. recognition's 1/4-of-identities rule) is left out, and said so.
        seeds: fine-tuning seeds per cell (default ``recipes.finetune(profile).seeds``).
        results_dir: runs go to ``<results_dir>/<task>/<init>/<pct>pct[-seed<k>]`` (default
            ``results/`` in the repository).
        n_train, n_test, image_size, num_identities: the synthetic sets (demo).
        overrides: validated recipe overrides.
        cluster: a ``slurm/clusters.yaml`` profile to submit the missing runs to.
        swav_trunk, supervised_trunk: the pretrained trunks (default: page 03's, pretrained
            here in the demo when missing).
        imagenet_weights, authors_weights: local weights files of the optional initialisations.
        threads: torch CPU threads of this process (None: torch's default, all cores).
        processes: demo runs trained at once, one per process on one thread each (None: one
            per core; :func:`facelib.tasks.grid.run_grid`).
    """

    #: The ``parameters``-cell names :meth:`from_parameters` reads.
    PARAMETERS = ("profile", "regimes", "seeds", "results_dir", "n_train", "n_test", "image_size",
                  "num_identities", "overrides", "cluster", "swav_trunk", "supervised_trunk",
                  "imagenet_weights", "authors_weights", "threads", "processes")

    @classmethod
    def from_parameters(cls, task: str, namespace: dict[str, Any]) -> "TaskPage":
        """The page of ``task`` from the names of a page's ``parameters`` cell (``globals()``):
        every name of :data:`PARAMETERS` it defines."""
        return cls(task, **{k: namespace[k] for k in cls.PARAMETERS if k in namespace})

    def __init__(self, task: str, *, profile: str = "demo", regimes: Sequence[float] | None = None,
                 seeds: Sequence[int] | None = None, results_dir: str | None = None, n_train: int = 1000,
                 n_test: int = 200, image_size: int = 64, num_identities: int = 100,
                 overrides: dict[str, Any] | None = None, cluster: str | None = None,
                 swav_trunk: str | None = None, supervised_trunk: str | None = None,
                 imagenet_weights: str | None = None, authors_weights: str | None = None,
                 threads: int | None = None, processes: int | None = None) -> None:
        import torch

        if task not in TITLES:
            raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TITLES)}")
        self.t_page = time.perf_counter()
        if threads:
            torch.set_num_threads(int(threads))
        self.name = task
        self.profile = profile
        self.headline = C.HEADLINES[task]
        self.root = book.find_root()
        self.out = Path(results_dir) if results_dir else self.root / "results"
        self.data = FT.DataSpec(n_train=n_train, n_test=n_test, size=image_size, num_identities=num_identities)
        self.overrides = dict(overrides or {})
        self.cluster = cluster
        self.processes = processes or len(os.sched_getaffinity(0))
        self.seeds = list(recipes.finetune(profile).seeds if seeds is None else seeds)
        self.task = FT.make_task(task, profile, self.overrides,
                                 num_classes=num_identities if task == "recognition" else 0)
        self.trunks = {"swav_trunk": swav_trunk, "supervised_trunk": supervised_trunk,
                       "imagenet_weights": imagenet_weights, "authors_weights": authors_weights}
        self.regimes, self.skipped = [], {}
        for r in recipes.finetune(profile).regimes if regimes is None else regimes:
            try:
                FT.training_subset(task, self.data, float(r))
                self.regimes.append(float(r))
            except ValueError as e:
                self.skipped[_pct(float(r))] = str(e)
        self.grid = pd.DataFrame()
        self.baselines: dict[str, dict[str, Any]] = {}
        self._sets: tuple[Any, Any] | None = None

    # ---------------------------------------------------------------------------------------
    # setup
    # ---------------------------------------------------------------------------------------
    def recipe(self) -> Any:
        """The paper's recipe beside this profile's (``viz.recipe_table``)."""
        return viz.recipe_table(recipes.task(self.name, "paper"), recipes.task(self.name, "demo"))

    def recipe_section(self) -> Any:
        """:data:`RECIPE_TEXT` and :meth:`recipe`."""
        _markdown(RECIPE_TEXT)
        return self.recipe()

    def grid_section(self) -> None:
        """:data:`GRID_TEXT`, then :meth:`run`, :meth:`runs_table` and :meth:`curves`."""
        from IPython.display import display

        _markdown(GRID_TEXT.format(seeds=len(self.seeds)))
        self.run()
        display(self.runs_table())
        self.curves()

    def results_section(self) -> None:
        """:data:`RESULTS_TEXT`, :meth:`results_table` and :meth:`figure`."""
        from IPython.display import display

        _markdown(RESULTS_TEXT)
        display(self.results_table())
        self.figure()

    def verdict_section(self) -> None:
        """:data:`VERDICT_TEXT`, :meth:`comparison` and :meth:`verdict`."""
        from IPython.display import display

        _markdown(VERDICT_TEXT)
        display(self.comparison())
        _markdown(self.verdict())

    def sets(self) -> tuple[Any, Any]:
        """(train, test) datasets of the page (built once)."""
        if self._sets is None:
            self._sets = self.data.build(self.name)
        return self._sets

    def samples(self, n: int = 6, repeats: int = 2) -> Any:
        """Evaluation crops and random training augmentations of the first ``n`` training faces."""
        fig = plots.augmented_samples(self.task, self.sets()[0], n=n, repeats=repeats)
        return viz.figure(fig, "Top row: the evaluation crop of six training faces (a square of 256/190 times the "
                               "face box, as in pretraining) with their labels; below: random draws of the "
                               "training augmentation.")

    # ---------------------------------------------------------------------------------------
    # the grid
    # ---------------------------------------------------------------------------------------
    def run(self) -> pd.DataFrame:
        """Train (demo) or read (paper) the grid; in the demo also score the trivial predictor."""
        inits = G.page_inits(self.profile, self.out, self.root, **self.trunks)
        self.inits = inits
        self.grid = G.page_grid(self.name, inits, self.regimes, self.out, profile=self.profile, data=self.data,
                                overrides=self.overrides, cluster=self.cluster, seeds=self.seeds,
                                processes=self.processes)
        if self.profile == "demo":
            self.baselines = {_pct(r): BL.mean_baseline(self.name, r, profile=self.profile, data=self.data)
                              for r in self.regimes}
        return self.grid

    @property
    def metrics(self) -> list[str]:
        """The task's headline metric first, then its other key metrics."""
        keys = [self.headline.metric] + [m for m, _ in BL.KEY_METRICS[self.name] if m != self.headline.metric]
        return keys

    def runs_table(self) -> Any:
        """Every run: initialisation, regime, seed, training images and seconds, key metrics."""
        cols = ["init", "regime", "seed", "n_train", "seconds"] + self.metrics
        df = self.grid.reindex(columns=cols) if len(self.grid) else pd.DataFrame(columns=cols)
        return viz.table(df, f"Every run of the grid ({len(df)}): {len(self.seeds)} fine-tuning seed(s) per "
                             "initialisation and data regime; seconds of training.", index=False)

    def curves(self) -> Any:
        """Training loss of the seed-0 runs, from their logs."""
        if not len(self.grid):
            return None
        first = self.grid[self.grid["seed"] == min(self.grid["seed"])]
        fig = plots.training_curves({f"{r.init} {r.regime}": self.out / r.run for r in first.itertuples()},
                                    title=f"{TITLES[self.name]}: training loss")
        return viz.figure(fig, "Training loss per iteration (thin) and per epoch (markers) of the seed-0 runs, "
                               "read from each run's `log.jsonl`.")

    # ---------------------------------------------------------------------------------------
    # results
    # ---------------------------------------------------------------------------------------
    def _ordered_inits(self) -> list[str]:
        present = list(dict.fromkeys(self.grid["init"])) if len(self.grid) else []
        return [i for i in INIT_ORDER if i in present] + [i for i in present if i not in INIT_ORDER]

    def summary(self) -> pd.DataFrame:
        """Mean ± standard error over seeds of the key metrics per (regime, init), with the
        trivial predictor's row per regime (demo)."""
        agg = C.aggregate(self.grid, self.metrics) if len(self.grid) else pd.DataFrame()
        rows = []
        for regime in C.regime_order(list(self.baselines) + (list(agg.index.get_level_values(0)) if len(agg) else [])):
            for init in self._ordered_inits():
                if len(agg) and (regime, init) in agg.index:
                    row = agg.loc[(regime, init)]
                    rows.append({"regime": regime, "init": init, "seeds": int(row[("seeds", "n")]),
                                 **{m: C.format_mean_se(row[(m, "mean")], row[(m, "se")])
                                    for m in self.metrics if (m, "mean") in row.index}})
            if regime in self.baselines:
                b = self.baselines[regime]
                rows.append({"regime": regime, "init": _BASELINE_NAME.get(self.name, "mean predictor"),
                             "seeds": 0, **{m: C.format_mean_se(float(b[m]), math.nan)
                                            for m in self.metrics if m in b}})
        return pd.DataFrame(rows)

    def results_table(self) -> Any:
        """:meth:`summary` as a captioned table."""
        base = _BASELINE_NAME.get(self.name, "mean predictor")
        return viz.table(self.summary(), f"Mean ± standard error over the fine-tuning seeds, on held-out "
                                         f"synthetic faces. The `{base}` rows: the trivial predictor of each "
                                         "regime (no training), the scale to read the runs against.",
                         index=False)

    def figure(self) -> Any:
        """The paper's figure: the headline metric against the data regime, one line per initialisation."""
        import textwrap

        import matplotlib.pyplot as plt

        viz.paper_style()
        h = self.headline
        agg = C.aggregate(self.grid, [h.metric]) if len(self.grid) else pd.DataFrame()
        regimes = C.regime_order(list(self.baselines) + (list(agg.index.get_level_values(0)) if len(agg) else []))
        fig, ax = plt.subplots(figsize=(plots.COLUMN_IN, 4.0))
        x = np.arange(len(regimes))
        for k, init in enumerate(self._ordered_inits()):
            pts = [(i, agg.loc[(r, init), (h.metric, "mean")], agg.loc[(r, init), (h.metric, "se")])
                   for i, r in enumerate(regimes) if (r, init) in agg.index]
            if not pts:
                continue
            xs, ms, ses = zip(*pts)
            ax.errorbar(np.array(xs) + (k - 1.5) * 0.04, ms, yerr=[2 * (s if np.isfinite(s) else 0) for s in ses],
                        marker="o", capsize=3, lw=1.6, color=_COLORS.get(init), label=init)
        if self.baselines:
            ax.plot(x, [self.baselines[r].get(h.metric, np.nan) if r in self.baselines else np.nan for r in regimes],
                    ls="--", color="black", lw=1, label=_BASELINE_NAME.get(self.name, "mean predictor"))
        ax.set_xticks(x, regimes)
        ax.set_xlabel("training labels (data regime)")
        label = h.label + (" (higher is better)" if h.sign > 0 else " (lower is better)")
        ax.set_ylabel("\n".join(textwrap.wrap(label, 30)))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # a grid without runs yet draws empty axes
            ax.legend(ncol=2)
        fig.tight_layout()
        return viz.figure(fig, f"{TITLES[self.name]}: {h.label} against the share of training labels, one line per "
                               "initialisation: mean over the fine-tuning seeds, error bars two standard errors; "
                               "dashed: the trivial predictor.")

    def comparisons(self) -> pd.DataFrame:
        """:func:`facelib.tasks.compare.compare` of every pair of :data:`PAIRS` that has runs."""
        return C.compare_all({self.name: self.grid}, PAIRS)

    def comparison(self) -> Any:
        """The comparisons as a table: difference of the means ± its standard error, and the verdict."""
        c = self.comparisons()
        df = pd.DataFrame({
            "regime": c["regime"], "comparison": c["a"] + " vs " + c["b"],
            "a": [C.format_mean_se(m, s) for m, s in zip(c["mean_a"], c["se_a"])],
            "b": [C.format_mean_se(m, s) for m, s in zip(c["mean_b"], c["se_b"])],
            "difference (positive: a better)": [C.format_mean_se(d, s) for d, s in zip(c["difference"], c["se"])],
            "verdict": c["verdict"],
        })
        return viz.table(df, f"{self.headline.label}: ours against random init and against the supervised "
                             "pretraining, per regime. Verdict: better or worse when the difference of the means "
                             f"exceeds {C.MARGIN_SE:g} standard errors, else equal.", index=False)

    def verdict(self) -> str:
        """Markdown sentences computed from the comparisons and the trivial predictor."""
        c = self.comparisons()
        skipped = ("- Not run: " + "; ".join(f"{k} ({v})" for k, v in self.skipped.items()) + "."
                   if self.skipped else "")
        if not len(c):
            return "\n".join(["No comparison yet: the grid has no finished runs of both initialisations."]
                             + ([skipped] if skipped else []))
        lines = []
        lowest = C.regime_order(c["regime"])[-1]
        for (a, b), part in c.groupby(["a", "b"], sort=False):
            part = part.set_index("regime").loc[C.regime_order(part["regime"])]
            words = "; ".join(f"{r}: **{row.verdict}** ({row.difference:+.3f} ± {row.se:.3f})"
                              for r, row in part.iterrows())
            lines.append(f"- `{a}` against `{b}` ({self.headline.label}, difference signed so that positive "
                         f"means `{a}` is better, ± one standard error): {words}.")
        low = c[c["regime"] == lowest]
        ours_random = low[(low["a"] == "ours") & (low["b"] == "random")]
        if len(ours_random):
            v = ours_random["verdict"].iloc[0]
            lines.append(f"- At the fewest labels run here ({lowest}), our pretraining is **{v}** "
                         + ("than" if v in ("better", "worse") else "to") + " random initialisation beyond "
                         f"{C.MARGIN_SE:g} standard errors" + (":" if v == "equal" else ".")
                         + (" the difference is within the noise of the seeds." if v == "equal" else ""))
        if self.baselines:
            vb = C.versus_baseline(self.grid, self.name, self.baselines)
            for regime, part in vb.groupby("regime", sort=False):
                clear = [r.init for r in part.itertuples() if r.clearly_better]
                others = [r.init for r in part.itertuples() if not r.clearly_better]
                lines.append(f"- {regime}: " + (f"clearly better than the trivial predictor: {', '.join(clear)}"
                                                if clear else "no initialisation is clearly better than the "
                                                              "trivial predictor")
                             + (f"; not clearly better: {', '.join(others)}" if clear and others else "") + ".")
        if skipped:
            lines.append(skipped)
        return "\n".join(lines)

    def ced(self, key: str = "ced_interocular", xlabel: str = "NME") -> Any:
        """Cumulative error distributions of the seed-0 runs of every regime (landmarks, 3D)."""
        if not len(self.grid):
            return None
        first = self.grid[self.grid["seed"] == min(self.grid["seed"])]
        fig = plots.ced_curves({f"{r.init} {r.regime}": self.out / r.run for r in first.itertuples()},
                               key=key, xlabel=xlabel, title="CED, synthetic test faces")
        return viz.figure(fig, "Cumulative error distribution of the seed-0 runs, from each run's `eval.npz`: the "
                               "share of test faces whose error is below each value.")

    def paper(self) -> None:
        """The paper's numbers for this task, as printed (not computed here)."""
        from IPython.display import Markdown, display

        shown = _PAPER[self.name]()
        if not shown:
            display(Markdown("The supplement prints no numbers for this task (the main body's tables were not "
                             "available to us)."))
        for caption, df in shown:
            display(viz.table(df, caption, index=False))

    def footer(self) -> None:
        """Page time and training time."""
        import torch

        train_s = float(self.grid["seconds"].sum()) if len(self.grid) else 0.0
        _markdown(f"Page time: {time.perf_counter() - self.t_page:.0f} s (training: {train_s:.0f} s over "
                  f"{len(self.grid)} runs in {self.processes} process(es), torch threads of this one: "
                  f"{torch.get_num_threads()}).")
