"""Seeds aggregated, initialisations compared: the verdicts of the task pages and the results page.

The paper's claim is a comparison of initialisations per task and data regime (supplement
Tables 1-3: ``ours`` against ``random``, ``imagenet`` and the supervised ``vggface``). Every
cell of our grid is run with several fine-tuning seeds (``recipes.Finetune.seeds``), so each
comparison is read against its noise:

* :func:`aggregate`: per (regime, init), the mean and standard error over seeds of each metric;
* :func:`compare`: per regime, one initialisation against another on a task's headline metric
  (:data:`HEADLINES`): the difference of the means, its standard error
  ``sqrt(se_a^2 + se_b^2)``, and the verdict ``better`` / ``worse`` when the difference (signed
  so that positive is better) is beyond two standard errors, ``equal`` otherwise;
* :func:`versus_baseline`: every initialisation's mean against the trivial predictor.

Shown in ``notebooks/04_face_recognition.py`` ... ``09_results.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from facelib.data import sampling

__all__ = ["Headline", "HEADLINES", "MARGIN_SE", "aggregate", "compare", "compare_all", "versus_baseline",
           "regime_order", "format_mean_se"]

#: A verdict needs a difference of more than this many standard errors.
MARGIN_SE = 2.0


@dataclass(frozen=True)
class Headline:
    """A task's headline metric: its key in ``metrics.json``, direction (+1: higher is better) and label."""

    metric: str
    sign: int
    label: str


#: The metric each task page draws against the data regime (the paper's tables' main columns).
HEADLINES: dict[str, Headline] = {
    "recognition": Headline("verification_acc", +1, "verification accuracy"),
    "landmarks": Headline("nme_interocular", -1, "NME, inter-ocular"),
    "au": Headline("icc_mean", +1, "ICC, mean of 12 AUs"),
    "emotion": Headline("ccc_mean", +1, "CCC, mean of valence and arousal"),
    "recon3d": Headline("nme_box", -1, "NME, box size"),
}


def regime_order(names: Iterable[str]) -> list[str]:
    """Regime names (``"100%"``, ``"2%"`` ...) from the most labels to the fewest."""
    return sorted(set(names), key=lambda n: -float(str(n).rstrip("%")))


def aggregate(grid: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Mean, standard error and number of seeds of ``metrics`` per (regime, init).

    Returns:
        Index (regime, init) in regime order; columns ``(metric, "mean")``, ``(metric, "se")``
        for each metric and ``("seeds", "n")``. With one seed the standard error is NaN.
    """
    cols = [m for m in metrics if m in grid.columns]
    rows = []
    for (regime, init), part in grid.groupby(["regime", "init"], sort=False):
        row: dict[tuple[str, str], Any] = {("regime", ""): regime, ("init", ""): init}
        for m in cols:
            v = pd.to_numeric(part[m], errors="coerce").dropna().to_numpy(float)
            row[(m, "mean")] = float(v.mean()) if len(v) else math.nan
            row[(m, "se")] = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
        row[("seeds", "n")] = int(len(part))
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=pd.MultiIndex.from_tuples([(m, s) for m in cols for s in ("mean", "se")]))
    out = pd.DataFrame(rows)
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    order = {r: i for i, r in enumerate(regime_order(out[("regime", "")]))}
    out = out.sort_values(by=[("regime", "")], key=lambda s: s.map(order), kind="stable")
    return out.set_index([("regime", ""), ("init", "")]).rename_axis(["regime", "init"])


def compare(grid: pd.DataFrame, task: str, a: str, b: str) -> pd.DataFrame:
    """``a`` against ``b`` on ``task``'s headline metric, per regime (both must have runs).

    Returns:
        One row per regime: ``regime, metric, a, b, mean_a, se_a, mean_b, se_b, n_a, n_b,
        difference`` (signed: positive when ``a`` is better), ``se`` (of the difference) and
        ``verdict``: ``better`` / ``worse`` when ``|difference| > MARGIN_SE * se``, else
        ``equal``; ``n/a`` with fewer than 2 seeds on a side (no standard error).
    """
    h = HEADLINES[task]
    agg = aggregate(grid, [h.metric])
    rows = []
    regimes = agg.index.get_level_values(0).unique() if len(agg) else []
    for regime in regimes:
        part = agg.loc[regime]
        if a not in part.index or b not in part.index:
            continue
        ma, sa, na = part.loc[a, (h.metric, "mean")], part.loc[a, (h.metric, "se")], part.loc[a, ("seeds", "n")]
        mb, sb, nb = part.loc[b, (h.metric, "mean")], part.loc[b, (h.metric, "se")], part.loc[b, ("seeds", "n")]
        diff = h.sign * (ma - mb)
        se = math.sqrt(sa ** 2 + sb ** 2) if np.isfinite(sa) and np.isfinite(sb) else math.nan
        if not np.isfinite(se) or not np.isfinite(diff):
            verdict = "n/a"
        elif abs(diff) > MARGIN_SE * se:
            verdict = "better" if diff > 0 else "worse"
        else:
            verdict = "equal"
        rows.append({"regime": regime, "metric": h.metric, "a": a, "b": b, "mean_a": ma, "se_a": sa,
                     "mean_b": mb, "se_b": sb, "n_a": int(na), "n_b": int(nb), "difference": diff, "se": se,
                     "verdict": verdict})
    return pd.DataFrame(rows, columns=["regime", "metric", "a", "b", "mean_a", "se_a", "mean_b", "se_b",
                                       "n_a", "n_b", "difference", "se", "verdict"])


def compare_all(grids: dict[str, pd.DataFrame], pairs: Sequence[tuple[str, str]] = (("ours", "random"),
                                                                                     ("ours", "supervised"))
                ) -> pd.DataFrame:
    """:func:`compare` for every task of ``grids`` (task -> grid) and every pair that has runs."""
    parts = []
    for task, grid in grids.items():
        for a, b in pairs:
            if len(grid) and {a, b} <= set(grid["init"]):
                c = compare(grid, task, a, b)
                c.insert(0, "task", task)
                parts.append(c)
    cols = ["task", "regime", "metric", "a", "b", "mean_a", "se_a", "mean_b", "se_b", "n_a", "n_b",
            "difference", "se", "verdict"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


def versus_baseline(grid: pd.DataFrame, task: str, baselines: dict[str, dict[str, Any]],
                    clear: float | None = None) -> pd.DataFrame:
    """Each initialisation's mean headline metric against the trivial predictor of its regime.

    Args:
        baselines: regime name -> the baseline's metrics (:func:`facelib.tasks.baseline.mean_baseline`).
        clear: the margin that counts as clearly better (default: 5 % of the baseline for errors,
            0.05 in the metric's units otherwise, as :mod:`facelib.tasks.baseline`).

    Returns:
        One row per (regime, init): ``mean, se, baseline, gain`` (positive when better) and
        ``clearly_better`` (the gain exceeds the clear margin and two standard errors).
    """
    from facelib.tasks.baseline import CLEAR_ABSOLUTE_GAIN, CLEAR_RELATIVE_ERROR_GAIN

    h = HEADLINES[task]
    agg = aggregate(grid, [h.metric])
    rows = []
    for (regime, init), row in agg.iterrows():
        if regime not in baselines or h.metric not in baselines[regime]:
            continue
        b = float(baselines[regime][h.metric])
        m, se = row[(h.metric, "mean")], row[(h.metric, "se")]
        gain = h.sign * (m - b)
        need = clear if clear is not None else (CLEAR_RELATIVE_ERROR_GAIN * abs(b) if h.sign < 0 else CLEAR_ABSOLUTE_GAIN)
        rows.append({"regime": regime, "init": init, "metric": h.metric, "mean": m, "se": se, "baseline": b,
                     "gain": gain, "clearly_better": bool(gain > need and (not np.isfinite(se) or gain > MARGIN_SE * se))})
    return pd.DataFrame(rows, columns=["regime", "init", "metric", "mean", "se", "baseline", "gain", "clearly_better"])


def format_mean_se(mean: float, se: float, digits: int = 3) -> str:
    """``"0.512 ± 0.012"`` (``"0.512"`` when the standard error is unknown)."""
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {se:.{digits}f}" if np.isfinite(se) else f"{mean:.{digits}f}"
