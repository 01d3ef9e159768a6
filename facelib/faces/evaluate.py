"""Scoring a face detector against known boxes: matches, recall and false positives by size.

Supplement Fig. 1 shows the sizes of the faces RetinaFace *found* in Flickr-Face; what it missed
is invisible there. Where the true boxes are known (the demo's composited photos,
:mod:`facelib.flickr.scenes`) these functions say how the two distributions differ:

* :func:`match`: per photo, true boxes and detections are paired greedily by decreasing IoU
  (each used once), a pair counts when its IoU is at least ``iou`` (0.5, as WIDER FACE and
  PASCAL VOC score detections);
* :func:`by_size`: per size bin, the true faces, how many were found (recall), and the
  detections that match no true face (false positives), binned by their own size;
* :func:`detection_figure`: both as a figure (recall and false positives by size; true vs
  detected size distributions).

Shown in ``notebooks/02_flickr_face.py``; tested in ``tests/test_faces_evaluate.py``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["iou_matrix", "match", "SIZE_EDGES", "by_size", "recall_note", "detection_figure"]

BOX = ["x1", "y1", "x2", "y2"]
# Octave bins of sqrt(w h) in pixels, from 2 px to 1024 px.
SIZE_EDGES: tuple[float, ...] = tuple(float(2**k) for k in range(1, 11))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) intersection over union of boxes ``a`` (N, 4) and ``b`` (M, 4), ``x1, y1, x2, y2``."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _greedy(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    pairs = []
    if iou.size == 0:
        return pairs
    order = np.argsort(-iou, axis=None, kind="stable")
    used_t, used_d = set(), set()
    for flat in order:
        t, d = divmod(int(flat), iou.shape[1])
        if iou[t, d] < threshold:
            break
        if t in used_t or d in used_d:
            continue
        used_t.add(t)
        used_d.add(d)
        pairs.append((t, d))
    return pairs


def match(truth: pd.DataFrame, detections: pd.DataFrame, iou: float = 0.5,
          key: str = "photo_id") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pair true faces with detections, photo by photo.

    Args:
        truth: one row per true face: ``key`` and ``x1 y1 x2 y2``.
        detections: one row per detected face: ``key`` and ``x1 y1 x2 y2`` (e.g. the manifest).
        iou: the least IoU of a match.

    Returns:
        ``(truth, detections)`` copies with ``size`` (sqrt(w h)), ``found`` / ``matched`` (bool)
        and ``iou`` (of the match; 0 where none). Photos missing from either side count:
        their true faces are missed, their detections are false positives.

    Raises:
        ValueError: ``iou`` outside (0, 1], or a table without the columns.
    """
    if not 0 < iou <= 1:
        raise ValueError(f"iou must be in (0, 1], got {iou}")
    for name, df in (("truth", truth), ("detections", detections)):
        missing = [c for c in [key] + BOX if c not in df]
        if missing:
            raise ValueError(f"{name}: no column(s) {missing}")
    t = truth.reset_index(drop=True).copy()
    d = detections.reset_index(drop=True).copy()
    for df in (t, d):
        df["size"] = np.sqrt(np.clip(df["x2"] - df["x1"], 0, None) * np.clip(df["y2"] - df["y1"], 0, None))
    t["found"], t["iou"] = False, 0.0
    d["matched"], d["iou"] = False, 0.0
    d_groups = d.groupby(d[key].astype(str)).indices
    for photo, t_idx in t.groupby(t[key].astype(str)).indices.items():
        d_idx = d_groups.get(photo)
        if d_idx is None:
            continue
        m = iou_matrix(t.loc[t_idx, BOX].to_numpy(), d.loc[d_idx, BOX].to_numpy())
        for i, j in _greedy(m, iou):
            t.loc[t_idx[i], ["found", "iou"]] = True, m[i, j]
            d.loc[d_idx[j], ["matched", "iou"]] = True, m[i, j]
    return t, d


def by_size(truth: pd.DataFrame, detections: pd.DataFrame,
            edges: Sequence[float] = SIZE_EDGES) -> pd.DataFrame:
    """Recall and false positives per size bin (the outputs of :func:`match`).

    Returns:
        One row per bin ``[from_px, to_px)`` of sqrt(w h): ``true faces``, ``found``,
        ``recall`` (NaN where no true face), ``detections`` (binned by the detected size),
        ``false positives`` and ``false-positive share``. Sizes outside the edges go to the
        first or last bin.
    """
    e = np.asarray(edges, np.float64)
    if e.ndim != 1 or len(e) < 2 or np.any(np.diff(e) <= 0):
        raise ValueError("edges must be at least two increasing sizes")
    nb = len(e) - 1

    def idx(s: pd.Series) -> np.ndarray:
        return np.clip(np.searchsorted(e, s.to_numpy(np.float64), side="right") - 1, 0, nb - 1)

    ti, di = idx(truth["size"]), idx(detections["size"])
    true_n = np.bincount(ti, minlength=nb)
    found = np.bincount(ti, weights=truth["found"].to_numpy(np.float64), minlength=nb).astype(np.int64)
    det_n = np.bincount(di, minlength=nb)
    fp = np.bincount(di, weights=(~detections["matched"].to_numpy(bool)).astype(np.float64),
                     minlength=nb).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(true_n > 0, found / np.maximum(true_n, 1), np.nan)
        fp_share = np.where(det_n > 0, fp / np.maximum(det_n, 1), np.nan)
    return pd.DataFrame({"from_px": e[:-1], "to_px": e[1:], "true faces": true_n, "found": found,
                         "recall": recall, "detections": det_n, "false positives": fp,
                         "false-positive share": fp_share})


def recall_note(truth: pd.DataFrame, detections: pd.DataFrame, min_size: float = 32.0,
                max_yaw: float = 30.0) -> str:
    """One Markdown paragraph: how many true faces were found, false positives, and the recall
    on faces larger than ``min_size`` px turned less than ``max_yaw`` degrees (needs ``yaw``)."""
    easy = truth[(truth["size"] > min_size) & (truth["yaw"].abs() < max_yaw)]
    found, n = int(truth["found"].sum()), len(truth)
    fp = int((~detections["matched"]).sum())
    text = (f"{n:,} faces were composited into these photos; the detector found {found:,} "
            f"({found / max(n, 1):.0%}) and made {fp:,} detections that match no composited face "
            f"(of {len(detections):,}).")
    if len(easy):
        text += (f" Of the faces larger than {min_size:g} px turned less than {max_yaw:g} degrees "
                 f"it found **{easy['found'].mean():.0%}** ({int(easy['found'].sum()):,} of {len(easy):,}).")
    return text


def detection_figure(truth: pd.DataFrame, detections: pd.DataFrame, bins_per_octave: int = 3,
                     title: str = "") -> Any:
    """Matplotlib figure: what the detector found, by size (outputs of :func:`match`).

    Left: recall of the true faces and the share of detections that are false positives, per
    size bin (log axis; :func:`by_size` gives the counts). Right: the distribution of the true
    sizes and of the detected sizes (what supplement Fig. 1 plots), same bins.
    """
    import matplotlib.pyplot as plt

    from facelib import viz

    viz.paper_style()
    sizes = np.concatenate([truth["size"].to_numpy(), detections["size"].to_numpy()])
    sizes = sizes[sizes > 0]
    lo = 2.0 ** np.floor(np.log2(max(sizes.min(), 1.0))) if len(sizes) else 2.0
    hi = 2.0 ** np.ceil(np.log2(sizes.max())) if len(sizes) else 1024.0
    edges = 2.0 ** np.arange(np.log2(lo), np.log2(hi) + 1e-9, 1.0 / bins_per_octave)
    table = by_size(truth, detections, edges)
    mid = np.sqrt(table["from_px"] * table["to_px"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    ax1.plot(mid, table["recall"], "o-", label="recall (true faces found)")
    ax1.plot(mid, table["false-positive share"], "s--", label="false positives / detections")
    ax1.set_ylim(0, 1.0)
    ax1.set_ylabel("share")
    ax1.legend(loc="center right")
    ax1.set_title("recall and false positives")
    ax2.stairs(np.histogram(truth["size"], edges)[0], edges, label=f"true faces ({len(truth):,})", lw=1.8)
    ax2.stairs(np.histogram(detections["size"], edges)[0], edges, fill=True, alpha=0.45,
               label=f"detections ({len(detections):,})")
    ax2.set_ylabel(f"faces per bin ({bins_per_octave} per octave)")
    ax2.set_title("true vs detected sizes")
    ax2.legend()
    ticks = [t for t in 2.0 ** np.arange(1, 11) if lo <= t <= hi]
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("face size sqrt(w h) (px)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
