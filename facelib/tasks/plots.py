"""Figures of the task pages: augmented inputs, training curves from the logs, CED curves.

Static matplotlib figures drawn from run artefacts (``log.jsonl``, ``eval.npz``), never from
in-memory training state. Used by ``notebooks/04_face_recognition.py`` ...
``08_3d_reconstruction.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import matplotlib.pyplot as plt
import numpy as np

from facelib.tasks.base import Task
from facelib.tasks.finetune import read_log

__all__ = ["augmented_samples", "training_curves", "ced_curves"]


def _caption(task: Task, labels: dict[str, Any]) -> str:
    if task.name == "recognition":
        return f"id {labels['identity']}"
    if task.name == "au":
        au = np.asarray(labels["au"])
        return "AU>0: " + (",".join(str(i) for i, v in zip((1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26), au) if v > 0) or "-")
    if task.name == "emotion":
        return f"v {labels['valence']:+.2f} a {labels['arousal']:+.2f} e {labels['expression']}"
    return ""


def augmented_samples(task: Task, dataset: Any, n: int = 6, repeats: int = 3, seed: int = 0) -> plt.Figure:
    """The evaluation crop of ``n`` faces (top row) and ``repeats`` random augmentations of each.

    Landmark tasks draw their (augmented) target points; the point drawn larger is 36, the
    image-left outer eye corner, which must stay on the image left after a flip.
    """
    fig, axes = plt.subplots(repeats + 1, n, figsize=(1.5 * n, 1.6 * (repeats + 1)), squeeze=False)
    for j in range(n):
        image, labels = dataset[j]
        for r in range(repeats + 1):
            rng = None if r == 0 else np.random.default_rng([seed, r, j])
            _, target, aug = task.prepare(image, labels, rng)
            ax = axes[r, j]
            ax.imshow(aug)
            if "points" in target:
                p = target["points"]
                ax.scatter(p[:, 0], p[:, 1], s=2, c="#00e5ff", linewidths=0)
                ax.scatter(p[36, 0], p[36, 1], s=12, c="#ff1744", linewidths=0)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(_caption(task, labels), fontsize=7)
        axes[0, 0].set_ylabel("eval crop", fontsize=8)
    for r in range(1, repeats + 1):
        axes[r, 0].set_ylabel(f"augmented {r}", fontsize=8)
    fig.tight_layout()
    return fig


def training_curves(runs: Mapping[str, str | Path], title: str = "") -> plt.Figure:
    """Training loss per iteration (thin) and per epoch (markers), one colour per run, from ``log.jsonl``."""
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
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
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def ced_curves(runs: Mapping[str, str | Path], key: str = "ced_interocular", xlabel: str = "NME",
               title: str = "") -> plt.Figure:
    """Cumulative error distributions stored in each run's ``eval.npz`` (``key``)."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for label, run_dir in runs.items():
        with np.load(Path(run_dir) / "eval.npz") as z:
            ax.plot(z["ced_thresholds"] * 100, z[key] * 100, label=label)
    ax.set_xlabel(f"{xlabel} (%)")
    ax.set_ylabel("images (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
