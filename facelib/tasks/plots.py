"""Figures of the task pages: augmented inputs, training curves from the logs, CED curves.

Static matplotlib figures drawn from run artefacts (``log.jsonl``, ``eval.npz``), never from
in-memory training state. Used by ``notebooks/04_face_recognition.py`` ...
``08_3d_reconstruction.py``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Mapping

import matplotlib.pyplot as plt
import numpy as np

from facelib import viz
from facelib.tasks.base import Task
from facelib.tasks.finetune import read_log

__all__ = ["augmented_samples", "training_curves", "ced_curves"]


#: The book's column at ``viz.paper_style``'s 110 dpi (``viz.COLUMN_PX``), in inches: a figure
#: at most this wide is shown at its size, so its text keeps the size it was set at.
COLUMN_IN = 6.8


def _caption(task: Task, labels: dict[str, Any]) -> str:
    """The labels of a face, in lines short enough for a sixth of the book's column."""
    if task.name == "recognition":
        return f"id {labels['identity']}"
    if task.name == "au":
        au = np.asarray(labels["au"])
        active = [str(i) for i, v in zip((1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26), au) if v > 0]
        return "AU>0:\n" + ("\n".join(textwrap.wrap(" ".join(active), 11)) if active else "-")
    if task.name == "emotion":
        return f"v {labels['valence']:+.2f}\na {labels['arousal']:+.2f}\nexpr. {labels['expression']}"
    return ""


def augmented_samples(task: Task, dataset: Any, n: int = 6, repeats: int = 3, seed: int = 0) -> plt.Figure:
    """The evaluation crop of ``n`` faces (top row) and ``repeats`` random augmentations of each.

    Landmark tasks draw their (augmented) target points; the point drawn larger is 36, the
    image-left outer eye corner, which must stay on the image left after a flip. At most six
    faces a row, the figure at most as wide as the book's column; more faces wrap to further rows.
    """
    viz.paper_style()
    cols = min(n, 6)
    blocks = -(-n // cols)
    side = min(1.5, (COLUMN_IN - 0.4) / cols)
    first = [_caption(task, dataset[j][1]) for j in range(n)]
    title_in = (max(c.count("\n") for c in first) + 1) * 0.19 if any(first) else 0.05
    fig = plt.figure(figsize=(side * cols + 0.4, blocks * ((repeats + 1) * (side + 0.05) + title_in) + 0.1),
                     layout="constrained")
    for b, sub in enumerate(fig.subfigures(blocks, 1, squeeze=False)[:, 0]):
        axes = sub.subplots(repeats + 1, cols, squeeze=False)
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            ax.spines[:].set_visible(False)
        for r in range(repeats + 1):
            axes[r, 0].set_ylabel("eval crop" if r == 0 else f"augm. {r}", fontsize=9)
        for c in range(cols):
            j = b * cols + c
            if j >= n:  # the empty places of the last row
                for ax in axes[:, c]:
                    ax.set_visible(False)
                continue
            image, labels = dataset[j]
            for r in range(repeats + 1):
                rng = None if r == 0 else np.random.default_rng([seed, r, j])
                _, target, aug = task.prepare(image, labels, rng)
                ax = axes[r, c]
                ax.imshow(aug)
                if "points" in target:
                    p = target["points"]
                    ax.scatter(p[:, 0], p[:, 1], s=3, c="#00e5ff", linewidths=0)
                    ax.scatter(p[36, 0], p[36, 1], s=16, c="#ff1744", linewidths=0)
                if r == 0 and first[j]:
                    ax.set_title(first[j], fontsize=9, linespacing=1.1)
    return fig


def _legend_below(fig: plt.Figure, ax: plt.Axes) -> None:
    """The runs' legend under the axes, in as many columns as fit the column width."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        longest = max(len(label) for label in labels)
        ncol = max(1, min(len(labels), int(COLUMN_IN / (0.5 + 0.075 * longest))))
        fig.legend(handles, labels, loc="outside lower center", ncol=ncol, frameon=False)


def training_curves(runs: Mapping[str, str | Path], title: str = "") -> plt.Figure:
    """Training loss per iteration (thin) and per epoch (markers), one colour per run, from ``log.jsonl``."""
    viz.paper_style()
    rows = -(-len(runs) // 4)  # the legend's rows
    fig, ax = plt.subplots(figsize=(COLUMN_IN, 3.6 + 0.25 * rows), layout="constrained")
    for k, (label, run_dir) in enumerate(runs.items()):
        color = f"C{k % 10}"
        it = read_log(run_dir, "iter")
        ep = read_log(run_dir, "epoch")
        if it:
            ax.plot([r["iter"] for r in it], [r["loss"] for r in it], color=color, lw=0.8, alpha=0.5)
        if ep:
            per_epoch = max(1, len(it) // max(1, len(ep)))
            ax.plot([(r["epoch"] + 1) * per_epoch - 1 for r in ep], [r["loss"] for r in ep], "o-",
                    color=color, label=label, ms=4)
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.set_title(title)
    _legend_below(fig, ax)
    return fig


def ced_curves(runs: Mapping[str, str | Path], key: str = "ced_interocular", xlabel: str = "NME",
               title: str = "") -> plt.Figure:
    """Cumulative error distributions stored in each run's ``eval.npz`` (``key``)."""
    viz.paper_style()
    rows = -(-len(runs) // 4)
    fig, ax = plt.subplots(figsize=(COLUMN_IN, 3.6 + 0.25 * rows), layout="constrained")
    for label, run_dir in runs.items():
        with np.load(Path(run_dir) / "eval.npz") as z:
            ax.plot(z["ced_thresholds"] * 100, z[key] * 100, label=label)
    ax.set_xlabel(f"{xlabel} (%)")
    ax.set_ylabel("images (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    _legend_below(fig, ax)
    return fig
