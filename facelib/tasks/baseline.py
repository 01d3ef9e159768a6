"""The trivial baseline a fine-tuned run is read against, and the pages' verdict.

:func:`mean_baseline` scores the predictor that outputs the mean training target (the majority
class; chance for recognition) on the test set of a :class:`~facelib.tasks.finetune.DataSpec`;
:func:`versus_baseline` puts each run's headline metrics (:data:`KEY_METRICS`) beside it and
:func:`verdict` writes one Markdown line per data regime: which runs beat it, and by how much.
Shown in ``notebooks/04_face_recognition.py`` ... ``08_3d_reconstruction.py``.
"""

from __future__ import annotations

import math
from typing import Any

from facelib.tasks.finetune import DataSpec, collate_targets, make_task, training_subset

__all__ = [
    "mean_baseline",
    "KEY_METRICS",
    "CLEAR_RELATIVE_ERROR_GAIN",
    "CLEAR_ABSOLUTE_GAIN",
    "versus_baseline",
    "verdict",
]


def mean_baseline(task_name: str, regime: float = 1.0, *, profile: str = "demo",
                  data: DataSpec | None = None) -> dict[str, Any]:
    """Metrics of the trivial predictor that outputs the mean training target (majority class).

    The scale against which a fine-tuned model is read: the mean shape for landmarks and 3D,
    the mean intensities for AUs, the mean valence/arousal and the most frequent expression.
    Training targets come from the evaluation crops of the ``regime`` subset; no training.
    For recognition, chance: always answering the more frequent of "same" / "different" on the
    test pairs (``verification_acc``, 0.5 on balanced pairs).
    """
    data = data or DataSpec()
    train_ds, test_ds = data.build(task_name)
    if task_name == "recognition":
        from facelib.tasks.recognition import image_pairs
        ids = data.identities("test") if data.kind == "synthetic" else test_ds.identity_array()
        _, same = image_pairs(ids)
        return {"verification_acc": float(max(same.mean(), 1 - same.mean())), "num_pairs": float(len(same))}
    task = make_task(task_name, profile, num_classes=2)
    subset = training_subset(task_name, data, regime, train_ds)
    train = collate_targets([task.eval_targets(train_ds[int(i)][1]) for i in subset])
    test = collate_targets([task.eval_targets(test_ds[i][1]) for i in range(len(test_ds))])
    flat, _ = task.evaluate(task.mean_prediction(train, len(test_ds)), test)
    return flat


#: Each task's headline metrics and their direction (+1: higher is better, -1: lower is better).
KEY_METRICS: dict[str, tuple[tuple[str, int], ...]] = {
    "recognition": (("verification_acc", +1),),
    "landmarks": (("nme_interocular", -1), ("nme_box", -1)),
    "au": (("icc_mean", +1), ("mae_mean", -1)),
    "emotion": (("acc", +1), ("valence_ccc", +1), ("arousal_ccc", +1)),
    "recon3d": (("nme_box", -1), ("nme_box_3d", -1)),
}
#: What :func:`verdict` calls a clear margin over the baseline: errors (NME, MAE) at least 5 %
#: lower than the baseline's; accuracies, ICC and CCC at least 0.05 higher (in their units).
CLEAR_RELATIVE_ERROR_GAIN = 0.05
CLEAR_ABSOLUTE_GAIN = 0.05


def versus_baseline(task_name: str, grid: "pd.DataFrame", baseline: dict[str, Any]) -> "pd.DataFrame":
    """Each run's headline metrics (:data:`KEY_METRICS`) beside the trivial baseline's.

    Args:
        grid: rows of :func:`facelib.tasks.grid.run_grid` / :func:`facelib.tasks.grid.collect_runs`.
        baseline: :func:`mean_baseline` of the same data, or one per regime name
            (``{"100%": {...}, "10%": {...}}``: each run is read against its regime's).

    Returns:
        One row per run and metric: ``init, regime, metric, value, baseline, better`` (bool: on
        the right side of the baseline), ``gain`` (the improvement, in the metric's units:
        positive when better) and ``clear`` (bool: by at least the clear margin,
        :data:`CLEAR_RELATIVE_ERROR_GAIN` of the baseline for errors, :data:`CLEAR_ABSOLUTE_GAIN`
        otherwise).
    """
    import pandas as pd

    per_regime = bool(baseline) and all(isinstance(v, dict) for v in baseline.values())
    rows = []
    for r in grid.to_dict("records"):
        base = baseline.get(r["regime"], {}) if per_regime else baseline
        for metric, sign in KEY_METRICS[task_name]:
            if metric not in r or metric not in base:
                continue
            v, b = float(r[metric]), float(base[metric])
            gain = sign * (v - b) if math.isfinite(v) and math.isfinite(b) else float("nan")
            need = CLEAR_RELATIVE_ERROR_GAIN * abs(b) if sign < 0 else CLEAR_ABSOLUTE_GAIN
            rows.append({"init": r["init"], "regime": r["regime"], "metric": metric, "value": v,
                         "baseline": b, "better": bool(gain > 0), "gain": gain, "clear": bool(gain >= need)})
    return pd.DataFrame(rows, columns=["init", "regime", "metric", "value", "baseline", "better", "gain", "clear"])


def verdict(task_name: str, table: "pd.DataFrame") -> str:
    """One Markdown line per regime from :func:`versus_baseline`: which runs beat the baseline.

    Each run and headline metric is put in one of three groups: better by a clear margin,
    better by less, not better.
    """
    if not len(table):
        return "No finished runs to compare with the baseline."
    lines = []
    for regime, part in table.groupby("regime", sort=False):
        fmt = lambda rows: "; ".join(f"{r.init} ({r.metric} {r.value:.3f} vs {r.baseline:.3f})" for r in rows)
        clear = [r for r in part.itertuples() if r.clear]
        slight = [r for r in part.itertuples() if r.better and not r.clear]
        worse = [r for r in part.itertuples() if not r.better]
        if len(clear) == len(part):
            lines.append(f"- **{regime}**: every run beats the trivial baseline by a clear margin on every "
                         f"headline metric: {fmt(clear)}.")
            continue
        parts = [f"not better than the trivial baseline: {fmt(worse)}" if worse else "",
                 f"better by less than a clear margin: {fmt(slight)}" if slight else "",
                 f"clearly better: {fmt(clear)}" if clear else ""]
        lines.append(f"- **{regime}**: " + ". ".join(p[0].upper() + p[1:] for p in parts if p) + ".")
    return "\n".join(lines)
