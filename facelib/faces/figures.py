"""Static figures of the preprocessing: detections, 256x256 crops, aligned faces.

Each function draws from the pipeline's artefacts (manifest rows and shards), so what the book
shows is what was written. Used by ``notebooks/01_data_curation.py``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from facelib import recipes
from facelib.faces.align import template
from facelib.faces.detect import LANDMARK_NAMES

__all__ = ["detections_figure", "crops_figure", "aligned_figure", "landmarks_of"]

_LMK_COLORS = ("#e41a1c", "#ffd92f", "#984ea3", "#4daf4a", "#377eb8")
# Detector and crop coordinates put pixel (i, j) on [j, j+1); imshow centres it on j.
_PX = 0.5


def landmarks_of(rows: pd.DataFrame) -> np.ndarray:
    """(N, 5, 2) landmarks of manifest rows, in the order of ``LANDMARK_NAMES``."""
    cols = [f"{n}_{c}" for n in LANDMARK_NAMES for c in "xy"]
    return rows[cols].to_numpy(dtype=np.float64).reshape(-1, 5, 2)


def _grid(n: int, cols: int, size: float):
    import matplotlib.pyplot as plt

    cols = max(1, min(cols, n))
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    return fig, axes.ravel()


def detections_figure(photos: Sequence[tuple[str, np.ndarray]], manifest: pd.DataFrame,
                      cols: int = 3, size: float = 3.0):
    """Each photo with its detected boxes (score) and 5 landmarks.

    Args:
        photos: ``(manifest file key, (H, W, 3) image)`` pairs.
        manifest: the pipeline's face manifest.
    """
    from matplotlib.patches import Rectangle

    fig, axes = _grid(len(photos), cols, size)
    for ax, (key, img) in zip(axes, photos):
        rows = manifest[manifest["file"] == key]
        ax.imshow(img)
        for (_, r), lmk in zip(rows.iterrows(), landmarks_of(rows)):
            ax.add_patch(Rectangle((r.x1 - _PX, r.y1 - _PX), r.x2 - r.x1, r.y2 - r.y1,
                                   fill=False, lw=1.5, ec="#00e5ff"))
            ax.text(r.x1, r.y1 - 4, f"{r.score:.2f}", color="#00e5ff", fontsize=9, va="bottom")
            ax.scatter(lmk[:, 0] - _PX, lmk[:, 1] - _PX, s=9, c=_LMK_COLORS, zorder=3)
        ax.set_title(f"{key}: {len(rows)} face(s)", fontsize=10)
    fig.tight_layout()
    return fig


def crops_figure(manifest: pd.DataFrame, root: Path | str, recipe: recipes.Crop | None = None,
                 cols: int = 4, size: float = 2.6):
    """The stored 256x256 crops, read back from the shards.

    Drawn on each: the detector box carried into the crop by the stored transform (its long
    side is ``face_size`` = 190 px), a dashed centred 190-px square for reference, and the
    landmarks carried by the same transform.
    """
    from matplotlib.patches import Rectangle

    from facelib import storage

    recipe = recipe or recipes.crop()
    ds = storage.ShardDataset(manifest.reset_index(drop=True), root=root)
    fig, axes = _grid(len(ds), cols, size)
    c = recipe.output_size / 2
    for i, ax in enumerate(axes[: len(ds)]):
        r = manifest.iloc[i]
        k, tx, ty = r.crop_scale, r.crop_tx, r.crop_ty
        ax.imshow(ds[i])
        ax.add_patch(Rectangle((c - recipe.face_size / 2 - _PX,) * 2, recipe.face_size,
                               recipe.face_size, fill=False, ls="--", lw=1, ec="white"))
        ax.add_patch(Rectangle((k * r.x1 + tx - _PX, k * r.y1 + ty - _PX), k * (r.x2 - r.x1),
                               k * (r.y2 - r.y1), fill=False, lw=1.5, ec="#00e5ff"))
        lmk = landmarks_of(manifest.iloc[[i]])[0] * k + [tx - _PX, ty - _PX]
        ax.scatter(lmk[:, 0], lmk[:, 1], s=9, c=_LMK_COLORS, zorder=3)
        ax.set_xlim(-_PX, recipe.output_size - _PX)
        ax.set_ylim(recipe.output_size - _PX, -_PX)
        ax.set_title(f"{r.file} #{r.face}\nbox {k * max(r.x2 - r.x1, r.y2 - r.y1):.0f} px",
                     fontsize=10)
    fig.tight_layout()
    return fig


def aligned_figure(manifest: pd.DataFrame, root: Path | str, recipe: recipes.Crop | None = None,
                   cols: int = 4, size: float = 2.0):
    """The stored 5-point aligned faces with the template points they were warped onto."""
    from facelib import storage

    recipe = recipe or recipes.crop()
    rows = manifest.reset_index(drop=True)
    ds = storage.ShardDataset(
        rows.drop(columns=["shard", "index"]).rename(
            columns={"aligned_shard": "shard", "aligned_index": "index"}), root=root)
    t = template(recipe.aligned_size)
    fig, axes = _grid(len(ds), cols, size)
    for i, ax in enumerate(axes[: len(ds)]):
        ax.imshow(ds[i])
        ax.scatter(t[:, 0], t[:, 1], s=14, facecolors="none", edgecolors=_LMK_COLORS, lw=1.2)
        ax.set_title(f"{rows.file[i]} #{rows.face[i]}", fontsize=8)
    fig.tight_layout()
    return fig
