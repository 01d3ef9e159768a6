"""The paper's reference tables as package data, checks of their arithmetic, and run results.

Tables 1-3 of the supplement are stored in ``facelib/tables/*.csv`` exactly as printed (values
kept as the printed strings, e.g. ``.136``). :func:`au_means` recomputes the per-AU averages
and flags those that the rounding of the printed values cannot explain; :func:`claim_check`
tests the supplement's claim that "ours" wins in every data regime of Table 3.
:func:`collect` gathers the ``results/<run>/metrics.json`` files that our runs write.

Shown in ``notebooks/09_results.py``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pandas as pd

__all__ = [
    "TABLES",
    "paper_table",
    "au_columns",
    "au_means",
    "affectnet",
    "claim_check",
    "collect",
    "run_tables",
    "AFFECTNET_METRICS",
    "LOWER_IS_BETTER",
]

TABLES: dict[str, dict[str, str]] = {
    "disfa": {
        "file": "table1_disfa.csv",
        "caption": "Table 1: few-shot facial AU intensity estimation on DISFA (ICC).",
    },
    "bp4d": {
        "file": "table2_bp4d.csv",
        "caption": "Table 2: few-shot facial AU intensity estimation on BP4D (ICC; printed 'BU4D').",
    },
    "affectnet": {
        "file": "table3_affectnet.csv",
        "caption": "Table 3: emotion recognition on AffectNet.",
    },
}

AFFECTNET_METRICS: dict[str, str] = {
    "acc": "Accuracy",
    "valence_rmse": "Valence RMSE",
    "valence_sagr": "Valence SAGR",
    "valence_pcc": "Valence PCC",
    "valence_ccc": "Valence CCC",
    "arousal_rmse": "Arousal RMSE",
    "arousal_sagr": "Arousal SAGR",
    "arousal_pcc": "Arousal PCC",
    "arousal_ccc": "Arousal CCC",
}
LOWER_IS_BETTER = frozenset({"valence_rmse", "arousal_rmse"})

# Printed values have 3 decimals: each is off the true value by at most 0.0005, so the mean of
# the printed per-AU values can differ from the printed (rounded) mean by at most 0.001.
ROUNDING_TOLERANCE = 0.001


def paper_table(name: str) -> pd.DataFrame:
    """One of the supplement's tables exactly as printed (every cell a string).

    Args:
        name: ``"disfa"`` (Table 1), ``"bp4d"`` (Table 2) or ``"affectnet"`` (Table 3).
    """
    if name not in TABLES:
        raise KeyError(f"unknown paper table {name!r}; choose one of {', '.join(TABLES)}")
    ref = resources.files("facelib") / "tables" / TABLES[name]["file"]
    with ref.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False)


def au_columns(table: pd.DataFrame) -> list[str]:
    """The per-AU columns of Table 1 or 2 (``AU1`` ...)."""
    return [c for c in table.columns if c.startswith("AU")]


def au_means(name: str) -> pd.DataFrame:
    """Recompute the average ICC of Table 1 or 2 from its per-AU values.

    Returns:
        One row per method: ``method, data_amount, printed, recomputed, difference, mismatch``;
        ``mismatch`` is True where the printed average differs from the mean of the printed
        per-AU values by more than rounding allows (0.001).
    """
    if name not in ("disfa", "bp4d"):
        raise KeyError(f"per-AU means exist for 'disfa' and 'bp4d', not {name!r}")
    table = paper_table(name)
    values = table[au_columns(table)].astype(float)
    recomputed = values.mean(axis=1)
    printed = table["Avg."].astype(float)
    diff = recomputed - printed
    return pd.DataFrame(
        {
            "method": table["method"],
            "data_amount": table["data_amount"],
            "printed": table["Avg."],
            "recomputed": recomputed.round(4),
            "difference": diff.round(4),
            "mismatch": diff.abs() > ROUNDING_TOLERANCE + 1e-12,
        }
    )


def affectnet() -> pd.DataFrame:
    """Table 3 with numeric metric columns (``data_amount`` and ``init`` stay strings)."""
    table = paper_table("affectnet")
    for col in AFFECTNET_METRICS:
        table[col] = table[col].astype(float)
    return table


def claim_check(table: pd.DataFrame | None = None, ours: str = "ours") -> pd.DataFrame:
    """Where, in Table 3, another initialisation beats ``ours``.

    The supplement (4.1) says "for all data regimes, our unsupervised models outperform the
    supervised baselines". This lists every (regime, metric) where that does not hold.

    Returns:
        Rows ``data_amount, metric, ours, best_other, best_other_init``.
    """
    table = affectnet() if table is None else table
    rows = []
    for regime, sub in table.groupby("data_amount", sort=False):
        mine = sub[sub["init"] == ours]
        others = sub[sub["init"] != ours]
        if mine.empty or others.empty:
            continue
        for metric in AFFECTNET_METRICS:
            value = float(mine[metric].iloc[0])
            lower = metric in LOWER_IS_BETTER
            best_idx = others[metric].idxmin() if lower else others[metric].idxmax()
            best = float(others.loc[best_idx, metric])
            beaten = best < value if lower else best > value
            if beaten:
                rows.append(
                    {
                        "data_amount": regime,
                        "metric": metric,
                        "ours": value,
                        "best_other": best,
                        "best_other_init": others.loc[best_idx, "init"],
                    }
                )
    return pd.DataFrame(rows, columns=["data_amount", "metric", "ours", "best_other", "best_other_init"])


def collect(results_dir: Path | str) -> pd.DataFrame:
    """Gather every run's ``metrics.json`` under ``results_dir`` into one table.

    A run directory, at any depth (fine-tuning writes ``results/<task>/<init>/<pct>pct/``),
    holds ``metrics.json`` (a flat mapping of metric name to number) and optionally
    ``run.json`` (task, regime, init, ...). Runs without ``metrics.json`` (still running, or
    failed) and runs set aside as ``*.stale`` are skipped.

    Returns:
        One row per run: ``run`` (its path below ``results_dir``) plus the scalar fields of
        ``run.json`` and ``metrics.json``.
    """
    root = Path(results_dir)
    rows = []
    metric_names: set[str] = set()
    if not root.is_dir():
        return pd.DataFrame(columns=["run"])
    for metrics_file in sorted(root.rglob("metrics.json")):
        run_dir = metrics_file.parent
        run = run_dir.relative_to(root)
        if any(part.endswith(".stale") for part in run.parts):
            continue
        row: dict[str, object] = {"run": run.as_posix()}
        for name in ("run.json", "metrics.json"):
            path = run_dir / name
            if not path.is_file():
                continue
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: not valid JSON ({exc})") from exc
            scalars = {k: v for k, v in data.items() if not isinstance(v, (dict, list))}
            if name == "metrics.json":
                metric_names.update(scalars)
            row.update(scalars)
        rows.append(row)
    df = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["run"])
    df.attrs["metrics"] = sorted(metric_names)
    return df


def run_tables(runs: pd.DataFrame, by: str = "task", index: tuple[str, ...] = ("init", "regime_name")) -> dict[str, pd.DataFrame]:
    """Split :func:`collect`'s table into one compact table per task.

    Each table is indexed by ``index`` (initialisation and data regime when the runs record
    them) and keeps only the metric columns (those from ``metrics.json``) that the task's runs
    fill; run-local details such as checkpoint paths are left out.

    Returns:
        ``{task: table}``; runs without ``by`` are grouped under ``"other"``.
    """
    metrics = [m for m in runs.attrs.get("metrics", []) if m in runs.columns]
    out: dict[str, pd.DataFrame] = {}
    if runs.empty:
        return out
    key = runs[by].fillna("other") if by in runs.columns else pd.Series("other", index=runs.index)
    for name, sub in runs.groupby(key, sort=True):
        idx = [c for c in index if c in sub.columns and sub[c].notna().all()]
        if not idx or sub.duplicated(idx).any():  # e.g. a variant run beside the recipe's
            idx.append("run")
        table = sub.set_index(idx)[metrics].dropna(axis=1, how="all")
        out[str(name)] = table.sort_index()
    return out
