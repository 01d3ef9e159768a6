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
    # at most the book's column (6.8 in at paper_style's 110 dpi): its text is not scaled down
    unit = min(1.3, (6.8 - 0.6) / sum(widths))
    fig, axes = plt.subplots(n, v + 1, figsize=(unit * sum(widths) + 0.6, (unit + 0.15) * n + 0.4 + 0.3 * bool(title)),
                             gridspec_kw={"width_ratios": widths}, squeeze=False)
    for r, (img, crops) in enumerate(zip(images, views)):
        axes[r, 0].imshow(img)
        for c, crop in enumerate(crops, 1):
            axes[r, c].imshow(crop.permute(1, 2, 0).numpy())
            if r == 0:
                axes[r, c].set_title(f"{crop.shape[-1]} px", fontsize=9)
        if r == 0:
            axes[r, 0].set_title(f"input {img.shape[1]} px", fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        ax.spines[:].set_visible(False)
    if title:
        fig.suptitle(title, fontsize=11)
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
    # stacked, at the book's column width: the text keeps its size
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(6.8, 5.6), sharex=True)
    ax1.plot(it, [r["loss"] for r in records], lw=1.5, label="SwAV loss")
    ax1.axhline(math.log(num_prototypes), color="0.5", ls="--", lw=1, label="ln K (uniform prediction)")
    ax1.set_ylabel("loss")
    lr_ax = ax1.twinx()
    lr_ax.plot(it, [r["lr"] for r in records], color="tab:orange", lw=1, alpha=0.7)
    lr_ax.set_ylabel("learning rate", color="tab:orange")
    lr_ax.grid(False)
    lr_ax.spines["right"].set_visible(True)
    ax1.legend(loc="upper right")
    ax2.plot(it, [r["usage_entropy"] for r in records], lw=1.5, label="usage entropy (hard assignments)")
    ax2.plot(it, [r["code_entropy"] for r in records], lw=1.5, label="mean code entropy (Sinkhorn)")
    ax2.axhline(math.log(num_prototypes), color="0.5", ls="--", lw=1, label="ln K")
    ax2.set_xlabel("iteration")
    ax2.set_ylabel("nats")
    ax2.legend()
    fig.tight_layout()
    return fig


def probe_grid_figure(probe: Any, persons: int = 6, scenes: int = 6) -> Any:
    """The probe's design: ``persons`` held-out persons (rows) in ``scenes`` scenes (columns)."""
    import matplotlib.pyplot as plt

    from .. import viz

    viz.paper_style()
    side = min(1.05, 6.8 / (scenes + 0.4))  # at most the book's column wide
    fig, axes = plt.subplots(persons, scenes, figsize=(side * (scenes + 0.4), side * (persons + 0.3)),
                             squeeze=False)
    for p in range(persons):
        for q in range(scenes):
            i = int(np.flatnonzero((probe.person == p) & (probe.scene == q))[0])
            ax = axes[p, q]
            ax.imshow(probe.images[i])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            ax.spines[:].set_visible(False)
            if p == 0:
                ax.set_title(f"scene {q}", fontsize=9)
            if q == 0:
                ax.set_ylabel(f"person {p}", fontsize=9)
    fig.tight_layout(pad=0.2)
    return fig


#: Colours of the probe's representations, in the order of ``probe.ORDER``.
_PROBE_COLORS = ("#d62728", "#1f77b4", "#7f7f7f", "#bcbd22")


def probe_figure(df: Any, order: Sequence[str]) -> Any:
    """Mean probe scores per representation with two-standard-error bars, in three groups:
    identity k-NN, identity linear probe (higher: the person is kept) and scene k-NN (lower: the
    scene is ignored); the dashed lines are chance."""
    import matplotlib.pyplot as plt

    from .. import viz

    viz.paper_style()
    panels = (("identity_knn", "identity_chance", "identity, k-NN top-1"),
              ("identity_linear", "identity_linear_chance", "identity, linear probe"),
              ("scene_knn", "scene_chance", "scene, k-NN top-1"))
    names = [n for n in order if n in set(df["representation"])]
    fig, ax = plt.subplots(figsize=(6.8, 3.6))
    width = 0.8 / max(len(names), 1)
    g = df.groupby("representation")
    for k, name in enumerate(names):
        count = g.size()[name]
        means = [g[col].mean()[name] for col, _, _ in panels]
        ses = [g[col].std(ddof=1)[name] / np.sqrt(count) if count > 1 else 0.0 for col, _, _ in panels]
        xs = np.arange(len(panels)) - 0.4 + width * (k + 0.5)
        ax.bar(xs, means, width * 0.9, yerr=[2 * s for s in ses], capsize=3,
               color=_PROBE_COLORS[k % len(_PROBE_COLORS)], label=name)
    for j, (_, chance, _) in enumerate(panels):
        ax.hlines(float(df[chance].mean()), j - 0.45, j + 0.45, linestyles="--", color="black", lw=1,
                  label="chance" if j == 0 else None)
    ax.set_xticks(range(len(panels)), [title for _, _, title in panels])
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.grid(axis="x", visible=False)
    handles, labels = ax.get_legend_handles_labels()
    first = labels.index("chance")  # the representations first, chance last
    handles, labels = handles[first + 1:] + handles[:first + 1], labels[first + 1:] + labels[:first + 1]
    ax.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(names) + 1, 3),
              frameon=False)
    fig.tight_layout()
    return fig
