"""Figures of the SwAV page: multi-crop views and training curves from the run log.

Shown in ``notebooks/03_swav_pretraining.py``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from torch import Tensor

__all__ = ["multicrop_figure", "training_curves_figure", "probe_grid_figure", "probe_figure"]


def multicrop_figure(images: Sequence[np.ndarray], views: Sequence[Sequence[Tensor]],
                     title: str = "") -> Any:
    """One row per image: the original, then its crops at their relative sizes.

    Args:
        images: (H, W, 3) uint8 originals.
        views: per image, the uint8 (3, s, s) crops of ``MultiCrop(..., normalize=False)``.
    """
    import matplotlib.pyplot as plt

    from .. import viz

    viz.paper_style()
    n, v = len(images), len(views[0])
    largest = max(int(c.shape[-1]) for c in views[0])
    widths = [1.0] + [int(c.shape[-1]) / largest for c in views[0]]
    fig, axes = plt.subplots(n, v + 1, figsize=(1.3 * sum(widths) + 1, 1.45 * n),
                             gridspec_kw={"width_ratios": widths}, squeeze=False)
    for r, (img, crops) in enumerate(zip(images, views)):
        axes[r, 0].imshow(img)
        for c, crop in enumerate(crops, 1):
            axes[r, c].imshow(crop.permute(1, 2, 0).numpy())
            if r == 0:
                axes[r, c].set_title(f"{crop.shape[-1]} px", fontsize=8)
        if r == 0:
            axes[r, 0].set_title(f"input {img.shape[1]} px", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def training_curves_figure(records: Sequence[dict[str, Any]], num_prototypes: int) -> Any:
    """Loss, learning rate and prototype usage against iterations, from ``"iter"`` log records.

    The loss of uniform predictions, ``ln K``, and the maximum usage entropy are drawn as
    dashed lines: a collapsed run sits on them (loss) or far below (usage).
    """
    import matplotlib.pyplot as plt

    from .. import viz

    viz.paper_style()
    it = np.array([r["iteration"] for r in records])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.2))
    ax1.plot(it, [r["loss"] for r in records], lw=1.5, label="SwAV loss")
    ax1.axhline(math.log(num_prototypes), color="0.5", ls="--", lw=1, label="ln K (uniform prediction)")
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("loss")
    lr_ax = ax1.twinx()
    lr_ax.plot(it, [r["lr"] for r in records], color="tab:orange", lw=1, alpha=0.7)
    lr_ax.set_ylabel("learning rate", color="tab:orange")
    lr_ax.grid(False)
    ax1.legend(loc="upper right", fontsize=8)
    ax2.plot(it, [r["usage_entropy"] for r in records], lw=1.5, label="usage entropy (hard assignments)")
    ax2.plot(it, [r["code_entropy"] for r in records], lw=1.5, label="mean code entropy (Sinkhorn)")
    ax2.axhline(math.log(num_prototypes), color="0.5", ls="--", lw=1, label="ln K")
    ax2.set_xlabel("iteration")
    ax2.set_ylabel("nats")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def probe_grid_figure(probe: Any, persons: int = 6, scenes: int = 6) -> Any:
    """The probe's design: ``persons`` held-out persons (rows) in ``scenes`` scenes (columns)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(persons, scenes, figsize=(1.05 * scenes, 1.05 * persons), squeeze=False)
    for p in range(persons):
        for q in range(scenes):
            i = int(np.flatnonzero((probe.person == p) & (probe.scene == q))[0])
            ax = axes[p, q]
            ax.imshow(probe.images[i])
            ax.set_xticks([])
            ax.set_yticks([])
            if p == 0:
                ax.set_title(f"scene {q}", fontsize=8)
            if q == 0:
                ax.set_ylabel(f"person {p}", fontsize=8)
    fig.tight_layout(pad=0.2)
    return fig


def probe_figure(df: Any, order: Sequence[str]) -> Any:
    """Mean probe scores per representation with two-standard-error bars, three panels:
    identity k-NN, identity linear probe (higher: the person is kept) and scene k-NN (lower: the
    scene is ignored); the dashed lines are chance."""
    import matplotlib.pyplot as plt

    panels = (("identity_knn", "identity_chance", "identity, k-NN top-1"),
              ("identity_linear", "identity_linear_chance", "identity, linear probe"),
              ("scene_knn", "scene_chance", "scene, k-NN top-1"))
    fig, axes = plt.subplots(1, 3, figsize=(9.6, 3.2), sharey=True)
    names = [n for n in order if n in set(df["representation"])]
    for ax, (col, chance, title) in zip(axes, panels):
        g = df.groupby("representation")[col]
        means = [g.mean()[n] for n in names]
        ses = [g.std(ddof=1)[n] / np.sqrt(g.count()[n]) if g.count()[n] > 1 else 0.0 for n in names]
        ax.bar(range(len(names)), means, yerr=[2 * s for s in ses], capsize=3,
               color=["#d62728", "#1f77b4", "#7f7f7f", "#bcbd22"][: len(names)])
        ax.axhline(float(df[chance].mean()), ls="--", color="black", lw=1)
        ax.set_xticks(range(len(names)), [n.replace(" ", "\n", 1) for n in names], fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("accuracy")
    fig.tight_layout()
    return fig
