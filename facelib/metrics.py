"""Every evaluation metric of the five downstream tasks, in pure NumPy (supplement 1.2, 4).

No I/O, no torch: inputs are array-likes, converted to float64. Every function checks its input
and raises :class:`MetricError` (a ``ValueError``) naming the argument and the reason for NaN or
infinite values, empty inputs, mismatched shapes and too few samples. Where a statistic is
undefined on valid input (the Pearson correlation of a constant prediction), it returns NaN and
says so in its docstring: a model that collapses to a constant early in training must not stop
the run.

Formulas and their sources (``p`` a prediction, ``g`` the ground truth, ``N`` samples):

* landmarks: :func:`nme` = mean over points of ``||p_j - g_j||_2 / d`` per image, with ``d``
  the inter-ocular distance (outer eye corners, 300W [Sagonas et al. 2013]; WFLW; COFW) or the
  box size ``sqrt(w * h)`` (AFLW, AFLW2000-3D [Zhu et al. 2016]); :func:`ced`, :func:`auc`,
  :func:`failure_rate` of the per-image errors;
* AU intensity: :func:`icc31` (Shrout & Fleiss 1979, ICC(3,1)), :func:`mae`;
* valence and arousal (AVEC 2015 [Ringeval et al.], AffectNet [Mollahosseini et al.]):
  :func:`rmse`, :func:`pcc`, :func:`ccc` (Lin 1989), :func:`sagr`; expressions: :func:`accuracy`;
* face verification: :func:`verification_accuracy` (LFW's 10-fold protocol, Huang et al. 2007),
  :func:`roc` and :func:`tar_at_far` (IJB-B/C protocol, Whitelam et al. 2017, Maze et al. 2018).

Validated against scipy and scikit-learn in ``tests/test_metrics.py``; used by
``facelib.tasks`` and shown in ``notebooks/04_face_recognition.py`` ... ``08_3d_reconstruction.py``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = [
    "MetricError",
    "EYE_CORNERS",
    "interocular_distance",
    "box_size",
    "nme",
    "ced",
    "auc",
    "failure_rate",
    "icc31",
    "mae",
    "rmse",
    "pcc",
    "ccc",
    "sagr",
    "accuracy",
    "roc",
    "tar_at_far",
    "verification_accuracy",
]

#: Outer eye corners (0-based point indices) of each landmark layout, keyed by point count:
#: 300W/iBUG 68 points (36, 45), WFLW 98 points (60, 72), COFW 29 points (8, 9).
EYE_CORNERS: dict[int, tuple[int, int]] = {68: (36, 45), 98: (60, 72), 29: (8, 9)}


class MetricError(ValueError):
    """A metric got input it cannot evaluate (NaN, wrong shape, too few samples); the message says which."""


def _array(name: str, x: Any, ndim: int | Sequence[int] | None = None, min_len: int = 1) -> np.ndarray:
    """``x`` as a finite float64 array with ``ndim`` dimensions and at least ``min_len`` rows."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise MetricError(f"{name}: not numeric ({e})") from e
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in allowed:
            raise MetricError(f"{name}: expected {' or '.join(map(str, allowed))} dimensions, "
                              f"got shape {a.shape}")
    if a.ndim == 0:
        raise MetricError(f"{name}: expected an array, got a scalar")
    if a.shape[0] < min_len:
        raise MetricError(f"{name}: needs at least {min_len} sample(s), got {a.shape[0]}")
    bad = ~np.isfinite(a)
    if bad.any():
        raise MetricError(f"{name}: {int(bad.sum())} NaN or infinite value(s) "
                          f"(first at index {tuple(int(i) for i in np.argwhere(bad)[0])})")
    return a


def _pair(pred: Any, gt: Any, ndim: int | Sequence[int] | None = None,
          min_len: int = 1) -> tuple[np.ndarray, np.ndarray]:
    p = _array("pred", pred, ndim, min_len)
    g = _array("gt", gt, ndim, min_len)
    if p.shape != g.shape:
        raise MetricError(f"pred has shape {p.shape} but gt has shape {g.shape}")
    return p, g


# ---------------------------------------------------------------------------------------------
# Landmarks and 3D reconstruction
# ---------------------------------------------------------------------------------------------
def interocular_distance(gt: Any, corners: tuple[int, int] | None = None) -> np.ndarray:
    """Distance between the outer eye corners of each ground-truth shape.

    Args:
        gt: (N, P, D) landmarks (D = 2 or 3).
        corners: the two point indices; default :data:`EYE_CORNERS` ``[P]``.

    Returns:
        (N,) distances ``||g_a - g_b||_2``.
    """
    g = _array("gt", gt, 3)
    if corners is None:
        if g.shape[1] not in EYE_CORNERS:
            raise MetricError(f"gt: no known eye corners for {g.shape[1]} points "
                              f"(known: {sorted(EYE_CORNERS)}); pass corners=(a, b)")
        corners = EYE_CORNERS[g.shape[1]]
    a, b = corners
    return np.linalg.norm(g[:, a] - g[:, b], axis=-1)


def box_size(gt: Any = None, boxes: Any = None) -> np.ndarray:
    """Face box size ``sqrt(w * h)`` (AFLW and AFLW2000-3D convention).

    Args:
        gt: (N, P, D) landmarks: the box is their 2D bounding box (x, y only).
        boxes: (N, 4) boxes ``x0, y0, x1, y1`` (used instead of ``gt`` when given).

    Returns:
        (N,) sizes.
    """
    if boxes is not None:
        b = _array("boxes", boxes, 2)
        if b.shape[1] != 4:
            raise MetricError(f"boxes: expected (N, 4) x0, y0, x1, y1, got {b.shape}")
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    elif gt is not None:
        g = _array("gt", gt, 3)
        w = g[:, :, 0].max(1) - g[:, :, 0].min(1)
        h = g[:, :, 1].max(1) - g[:, :, 1].min(1)
    else:
        raise MetricError("box_size needs gt landmarks or boxes")
    if (w < 0).any() or (h < 0).any():
        raise MetricError("boxes: x1 < x0 or y1 < y0")
    return np.sqrt(w * h)


def nme(pred: Any, gt: Any, norm: str = "interocular", boxes: Any = None,
        corners: tuple[int, int] | None = None) -> np.ndarray:
    """Normalised mean error of each image.

    ``NME_i = (1 / P) * sum_j ||p_ij - g_ij||_2 / d_i`` with ``d_i`` the inter-ocular distance
    (outer eye corners, ``norm="interocular"``) or the box size ``sqrt(w * h)`` of the
    ground-truth landmarks or of ``boxes`` (``norm="box"``). The dataset NME is the mean of the
    returned values (usually quoted in %).

    Args:
        pred, gt: (N, P, D) landmarks; all D coordinates enter the distance (pass ``[..., :2]``
            for the 2D NME of 3D landmarks used on AFLW2000-3D).
        norm: ``"interocular"`` or ``"box"``.
        boxes: (N, 4) boxes for ``norm="box"``.
        corners: eye-corner indices overriding :data:`EYE_CORNERS`.

    Returns:
        (N,) per-image errors (fractions of ``d``).

    Raises:
        MetricError: bad shapes, NaN, unknown ``norm`` or a zero normalising distance.
    """
    p, g = _pair(pred, gt, 3)
    if norm == "interocular":
        d = interocular_distance(g, corners)
    elif norm == "box":
        d = box_size(g, boxes)
        if d.shape[0] != g.shape[0]:
            raise MetricError(f"boxes has {d.shape[0]} rows for {g.shape[0]} shapes")
    else:
        raise MetricError(f"norm must be 'interocular' or 'box', got {norm!r}")
    if (d <= 0).any():
        raise MetricError(f"gt: zero {norm} distance for image(s) {np.flatnonzero(d <= 0)[:5].tolist()}")
    return np.linalg.norm(p - g, axis=-1).mean(axis=1) / d


def ced(errors: Any, thresholds: Any) -> np.ndarray:
    """Cumulative error distribution: fraction of images with error <= each threshold.

    Args:
        errors: (N,) per-image errors (e.g. from :func:`nme`).
        thresholds: (T,) error values.

    Returns:
        (T,) fractions in [0, 1]; ``F(t) = #{i : e_i <= t} / N``.
    """
    e = np.sort(_array("errors", errors, 1))
    t = _array("thresholds", thresholds, 1)
    return np.searchsorted(e, t, side="right") / e.shape[0]


def auc(errors: Any, threshold: float) -> float:
    """Area under the CED curve from 0 to ``threshold``, divided by ``threshold`` (in [0, 1]).

    Exact: ``AUC = (1 / T) * int_0^T F(t) dt = (1 / N) * sum_i max(0, T - e_i) / T``, the limit
    of the trapezoid sums over a fine grid that 300W/WFLW evaluation scripts compute.
    """
    e = _array("errors", errors, 1)
    if not threshold > 0:
        raise MetricError(f"threshold must be > 0, got {threshold}")
    return float(np.mean(np.clip(threshold - e, 0.0, None)) / threshold)


def failure_rate(errors: Any, threshold: float) -> float:
    """Fraction of images whose error exceeds ``threshold`` (``e_i > T``), e.g. 0.08 or 0.10."""
    e = _array("errors", errors, 1)
    return float(np.mean(e > threshold))


# ---------------------------------------------------------------------------------------------
# AU intensity
# ---------------------------------------------------------------------------------------------
def icc31(pred: Any, gt: Any) -> np.ndarray | float:
    """ICC(3,1) between prediction and ground truth (Shrout & Fleiss 1979, case 3, single rater).

    The two "raters" (prediction and annotation) rate ``n`` targets. With the two-way ANOVA of
    the ``n x k`` table (``k = 2``): ``BMS`` the between-targets mean square, ``EMS`` the
    residual mean square,

        ``ICC(3,1) = (BMS - EMS) / (BMS + (k - 1) * EMS)``.

    This is the AU-intensity metric of DISFA/BP4D papers (supplement Tables 1 and 2).

    Args:
        pred, gt: (n,) or (n, A) intensities (A action units, one ICC each).

    Returns:
        A float for 1-D input, else (A,) values (average them for the table's "Avg.").
        NaN where both columns are constant (0 / 0).

    Raises:
        MetricError: fewer than 2 samples, NaN, shape mismatch.
    """
    p, g = _pair(pred, gt, (1, 2), min_len=2)
    one = p.ndim == 1
    if one:
        p, g = p[:, None], g[:, None]
    n, k = p.shape[0], 2
    y = np.stack([p, g], axis=1)  # (n, k, A)
    grand = y.mean(axis=(0, 1))
    row_means = y.mean(axis=1)  # (n, A)
    col_means = y.mean(axis=0)  # (k, A)
    ss_total = ((y - grand) ** 2).sum(axis=(0, 1))
    ss_rows = k * ((row_means - grand) ** 2).sum(axis=0)
    ss_cols = n * ((col_means - grand) ** 2).sum(axis=0)
    ss_err = ss_total - ss_rows - ss_cols
    bms = ss_rows / (n - 1)
    ems = ss_err / ((n - 1) * (k - 1))
    den = bms + (k - 1) * ems
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, (bms - ems) / np.where(den > 0, den, 1.0), np.nan)
    return float(out[0]) if one else out


def mae(pred: Any, gt: Any) -> np.ndarray | float:
    """Mean absolute error ``(1 / N) * sum_i |p_i - g_i|``: a float for 1-D input, else one per column."""
    p, g = _pair(pred, gt, (1, 2))
    out = np.abs(p - g).mean(axis=0)
    return float(out) if p.ndim == 1 else out


# ---------------------------------------------------------------------------------------------
# Valence, arousal and expressions
# ---------------------------------------------------------------------------------------------
def rmse(pred: Any, gt: Any) -> float:
    """Root mean square error ``sqrt((1 / N) * sum_i (p_i - g_i)^2)`` of (N,) values."""
    p, g = _pair(pred, gt, 1)
    return float(np.sqrt(np.mean((p - g) ** 2)))


def pcc(pred: Any, gt: Any) -> float:
    """Pearson correlation ``sum (p - mp)(g - mg) / sqrt(sum (p - mp)^2 * sum (g - mg)^2)``.

    Returns NaN when either input is constant (the correlation is undefined; scipy also
    returns NaN there).

    Raises:
        MetricError: fewer than 2 samples, NaN, shape mismatch.
    """
    p, g = _pair(pred, gt, 1, min_len=2)
    dp, dg = p - p.mean(), g - g.mean()
    den = np.sqrt(np.sum(dp * dp) * np.sum(dg * dg))
    if den == 0:
        return float("nan")
    return float(np.clip(np.sum(dp * dg) / den, -1.0, 1.0))


def ccc(pred: Any, gt: Any) -> float:
    """Concordance correlation coefficient (Lin 1989; AVEC 2015).

    ``CCC = 2 * s_pg / (s_p^2 + s_g^2 + (m_p - m_g)^2)`` with population (1/N) variances and
    covariance. 0 for a constant prediction of a varying target; NaN when both are the same
    constant (0 / 0). The emotion loss uses ``1 - CCC`` (supplement 4.1).

    Raises:
        MetricError: fewer than 2 samples, NaN, shape mismatch.
    """
    p, g = _pair(pred, gt, 1, min_len=2)
    mp, mg = p.mean(), g.mean()
    cov = np.mean((p - mp) * (g - mg))
    den = p.var() + g.var() + (mp - mg) ** 2
    if den == 0:
        return float("nan")
    return float(2 * cov / den)


def sagr(pred: Any, gt: Any) -> float:
    """Sign agreement: ``(1 / N) * sum_i [sign(p_i) == sign(g_i)]`` (AffectNet; Kossaifi et al. 2017).

    ``sign(0) = 0``, so a zero agrees only with a zero.
    """
    p, g = _pair(pred, gt, 1)
    return float(np.mean(np.sign(p) == np.sign(g)))


def accuracy(pred: Any, gt: Any) -> float:
    """Classification accuracy ``(1 / N) * sum_i [c_i == y_i]``.

    Args:
        pred: (N,) predicted class indices, or (N, C) scores (the argmax is taken).
        gt: (N,) true class indices.
    """
    p = _array("pred", pred, (1, 2))
    g = _array("gt", gt, 1)
    if p.ndim == 2:
        p = p.argmax(axis=1)
    if p.shape != g.shape:
        raise MetricError(f"pred has {p.shape[0]} samples but gt has {g.shape[0]}")
    return float(np.mean(p == g))


# ---------------------------------------------------------------------------------------------
# Face verification
# ---------------------------------------------------------------------------------------------
def _scores_labels(scores: Any, same: Any) -> tuple[np.ndarray, np.ndarray]:
    s = _array("scores", scores, 1)
    y = _array("same", same, 1)
    if s.shape != y.shape:
        raise MetricError(f"scores has {s.shape[0]} pairs but same has {y.shape[0]}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise MetricError("same: labels must be 0 (different) or 1 (same person)")
    return s, y.astype(bool)


def roc(scores: Any, same: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC of similarity ``scores`` (higher = more alike): a pair is "same" when ``score >= t``.

    Args:
        scores: (N,) similarities (e.g. cosine) of the pairs.
        same: (N,) 1 for genuine pairs, 0 for impostor pairs.

    Returns:
        ``fpr, tpr, thresholds``, one point per distinct score in decreasing order, preceded by
        the point (0, 0) at threshold ``+inf`` (as ``sklearn.metrics.roc_curve`` with
        ``drop_intermediate=False``).
    """
    s, y = _scores_labels(scores, same)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise MetricError("same: need both genuine (1) and impostor (0) pairs")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]  # last index of each distinct score
    tp = np.cumsum(y_sorted)[last]
    fp = (last + 1) - tp
    fpr = np.r_[0.0, fp / n_neg]
    tpr = np.r_[0.0, tp / n_pos]
    thr = np.r_[np.inf, s_sorted[last]]
    return fpr, tpr, thr


def tar_at_far(scores: Any, same: Any, far: float | Sequence[float]) -> float | np.ndarray:
    """True accept rate at a false accept rate (IJB-B/C verification protocol).

    ``TAR@FAR=f`` is the highest TPR of any threshold whose FPR is at most ``f``.

    Args:
        scores, same: as :func:`roc` (scores of template pairs in the IJB protocol).
        far: one target FAR or several (e.g. ``(1e-3, 1e-4)``).

    Returns:
        A float, or an array for several targets. With fewer than ``1 / f`` impostor pairs the
        only admissible threshold may be ``+inf`` (TAR 0): report the impostor count beside it.
    """
    fpr, tpr, _ = roc(scores, same)
    targets = np.atleast_1d(np.asarray(far, dtype=np.float64))
    if not ((targets >= 0) & (targets <= 1)).all():
        raise MetricError(f"far must be in [0, 1], got {far}")
    out = np.array([tpr[fpr <= f].max() for f in targets])
    return float(out[0]) if np.ndim(far) == 0 else out


def _best_threshold(s: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Threshold maximising the accuracy of ``score >= t`` on (s, y); ties go to the highest ``t``."""
    fpr, tpr, thr = roc(s, y) if (y.any() and (~y).any()) else _one_class_roc(s, y)
    n_pos, n_neg = y.sum(), (~y).sum()
    acc = (tpr * n_pos + (1 - fpr) * n_neg) / y.size
    i = int(np.argmax(acc))  # first maximum = highest threshold
    return float(thr[i]), float(acc[i])


def _one_class_roc(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u = np.unique(s)[::-1]
    thr = np.r_[np.inf, u]
    frac = np.array([np.mean(s >= t) for t in thr])
    return (np.zeros_like(frac), frac, thr) if y.all() else (frac, np.zeros_like(frac), thr)


def verification_accuracy(scores: Any, same: Any, n_folds: int = 10,
                          folds: Any = None) -> dict[str, Any]:
    """Verification accuracy with threshold selection by cross-validation (LFW protocol).

    The pairs are split into ``n_folds`` folds (LFW: 10 folds of 300 genuine + 300 impostor
    pairs, consecutive in ``pairs.txt``). For each fold the threshold that maximises the
    accuracy of ``score >= t`` on the other folds (candidates: ``+inf`` and every distinct
    training score; ties go to the highest) is applied to the held-out fold. The reported
    accuracy is the mean (and standard deviation) over folds.

    Args:
        scores: (N,) similarities; same: (N,) 1 genuine / 0 impostor.
        n_folds: number of consecutive folds (ignored when ``folds`` is given).
        folds: (N,) fold index of each pair, to reproduce a given split.

    Returns:
        ``{"accuracy", "std", "fold_accuracy" (K,), "thresholds" (K,)}``.
    """
    s, y = _scores_labels(scores, same)
    if folds is None:
        if not 2 <= n_folds <= s.size:
            raise MetricError(f"n_folds must be in [2, {s.size}] for {s.size} pairs, got {n_folds}")
        fold = np.arange(s.size) * n_folds // s.size
    else:
        fold = np.asarray(folds)
        if fold.shape != s.shape:
            raise MetricError(f"folds has shape {fold.shape}, scores {s.shape}")
    ids = np.unique(fold)
    if ids.size < 2:
        raise MetricError("verification_accuracy needs at least 2 folds")
    accs, thrs = [], []
    for k in ids:
        test = fold == k
        t, _ = _best_threshold(s[~test], y[~test])
        accs.append(float(np.mean((s[test] >= t) == y[test])))
        thrs.append(t)
    a = np.array(accs)
    return {"accuracy": float(a.mean()), "std": float(a.std()), "fold_accuracy": a,
            "thresholds": np.array(thrs)}
