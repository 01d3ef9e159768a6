"""Static figures of the data layer (matplotlib): sample grids, AU sweeps, labels per regime.

Used by ``notebooks/01_data_curation.py``. Each function returns a pyplot figure (shown by the
notebook's inline backend at the end of the cell, as :mod:`facelib.viz` figures are; close it
with ``plt.close(fig)`` outside a notebook).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from facelib import viz

from facelib.data import face_model as fm
from facelib.data import synth

__all__ = ["synth_grid", "au_sweep", "label_shares_by_regime", "label_shares_table"]


def _figure(figsize: tuple[float, float]) -> Figure:
    import matplotlib.pyplot as plt

    viz.paper_style()
    return plt.figure(figsize=figsize)


def _top_aus(au: np.ndarray, k: int = 3) -> str:
    order = np.argsort(-au, kind="stable")[:k]
    parts = [f"AU{fm.AU_IDS[i]}:{int(au[i])}" for i in order if au[i] > 0]
    return " ".join(parts) if parts else "no AU"


def synth_grid(n: int = 16, seed: int = 0, size: int = 128, num_identities: int = 100, cols: int = 4,
               start: int = 0) -> Figure:
    """A grid of synthetic faces with their 68 landmarks (dots), 5 points (crosses), box and labels.

    Each tile's caption: identity, expression, valence/arousal, yaw, and the strongest AUs.
    """
    rows = int(np.ceil(n / cols))
    fig = _figure(figsize=(1.9 * cols, 2.25 * rows))
    for k in range(n):
        img, lab = synth.render(start + k, seed, size, num_identities)
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.imshow(img)
        lm, five, b = lab["landmarks_2d"], lab["landmarks_5"], lab["box"]
        ax.scatter(lm[:, 0], lm[:, 1], s=2, c="#39ff14", linewidths=0)
        ax.scatter(five[:, 0], five[:, 1], s=14, c="#ff2d95", marker="x", linewidths=0.8)
        ax.plot([b[0], b[2], b[2], b[0], b[0]], [b[1], b[1], b[3], b[3], b[1]], c="#ffd400", lw=0.6)
        ax.set_xlim(0, size)
        ax.set_ylim(size, 0)
        ax.set_axis_off()
        ax.set_title(f"id {lab['identity']} {fm.EXPRESSIONS[lab['expression']]}\n"
                     f"v {lab['valence']:+.2f} a {lab['arousal']:+.2f} yaw {lab['pose'][0]:+.0f}\n"
                     f"{_top_aus(lab['au'])}", fontsize=8, pad=2)
    fig.tight_layout(pad=0.3)
    return fig


def au_sweep(aus: Sequence[int] = (1, 4, 6, 12, 15, 26), levels: Sequence[int] = (0, 1, 3, 5), index: int = 2,
             seed: int = 0, size: int = 128) -> Figure:
    """One person, frontal, each AU alone at increasing intensity (rows: AUs, columns: levels).

    Nuisances (occlusion, lighting, blur, noise, JPEG) are off so that only the AU changes.
    """
    base = synth.sample_params(index, seed, size)
    base = dataclasses.replace(base, yaw=0.0, pitch=0.0, roll=0.0, asymmetry=0.0,
                               center=(size / 2, size * 0.42), scale=size * 0.22)
    fig = _figure(figsize=(1.6 * len(levels), 1.7 * len(aus)))
    for r, au_id in enumerate(aus):
        for c, level in enumerate(levels):
            au = np.zeros(12)
            au[fm.AU_IDS.index(au_id)] = level
            img, _ = synth.render_params(dataclasses.replace(base, au=au), nuisance=False)
            ax = fig.add_subplot(len(aus), len(levels), r * len(levels) + c + 1)
            ax.imshow(img[int(size * 0.08):int(size * 0.85), int(size * 0.15):int(size * 0.85)])
            ax.set_axis_off()
            ax.set_title(f"AU{au_id} = {level}", fontsize=7, pad=2)
    fig.tight_layout(pad=0.3)
    return fig


def label_shares_table(manifest: pd.DataFrame, subsets: Any, label: str,
                       names: Sequence[str] | None = None) -> pd.DataFrame:
    """Share of each value of ``label`` (rows) in each regime's subset (columns), in percent."""
    cols = {}
    for f in subsets.regimes:
        vals = manifest[label].iloc[subsets.indices(f)]
        cols[f"{f * 100:g}%"] = vals.value_counts(normalize=True).sort_index() * 100
    t = pd.DataFrame(cols).fillna(0.0)
    if names is not None:
        t.index = [names[int(i)] if 0 <= int(i) < len(names) else str(i) for i in t.index]
    return t


def label_shares_by_regime(manifest: pd.DataFrame, subsets: Any, label: str,
                           names: Sequence[str] | None = None, title: str = "") -> Figure:
    """Grouped bars: the label distribution of every regime's subset beside the full set's.

    Equal bars across regimes show that the subsets were drawn without looking at the labels.
    """
    t = label_shares_table(manifest, subsets, label, names)
    fig = _figure(figsize=(7.5, 2.8))
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(t.columns)
    x = np.arange(len(t.index))
    for k, col in enumerate(t.columns):
        ax.bar(x + (k - (len(t.columns) - 1) / 2) * width, t[col].to_numpy(), width, label=col)
    ax.set_xticks(x, [str(i) for i in t.index], fontsize=9)
    ax.set_ylabel("share of the subset (%)")
    ax.legend(title="regime", fontsize=8, title_fontsize=8, ncols=len(t.columns))
    if title:
        ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig
