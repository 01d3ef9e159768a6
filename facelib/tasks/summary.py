"""The results page's summary of our grids: which initialisation wins where (notebooks/09).

The demo's version of the paper's summary: every task's grid read back from ``results/``
(:func:`facelib.tasks.grid.collect_runs`), ``ours`` compared with ``random`` and with
``supervised`` per task and data regime (:mod:`facelib.tasks.compare`), a figure with one
panel per task (the headline metric against the data regime), and sentences computed from
the verdicts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facelib.tasks import compare as C
from facelib.tasks.grid import collect_runs
from facelib.tasks.page import INIT_ORDER, PAIRS, TITLES, _COLORS

__all__ = ["collect_grids", "verdict_table", "summary_figure", "summary_text"]


def collect_grids(results_dir: str | Path, profile: str) -> dict[str, pd.DataFrame]:
    """Every task's finished runs of ``profile`` under ``results_dir`` (tasks without runs left out)."""
    out = {}
    for task in TITLES:
        g = collect_runs(results_dir, task, profile)
        if len(g):
            out[task] = g
    return out


def verdict_table(comparisons: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, regime), one column per comparison: ``verdict (difference ± se)``."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for r in comparisons.itertuples():
        key = (TITLES.get(r.task, r.task), r.regime)
        rows.setdefault(key, {})[f"{r.a} vs {r.b}"] = f"{r.verdict} ({C.format_mean_se(r.difference, r.se)})"
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index = pd.MultiIndex.from_tuples(df.index, names=["task", "regime"])
    order = {t: i for i, t in enumerate(TITLES.values())}
    regimes = {r: i for i, r in enumerate(C.regime_order(comparisons["regime"]))}
    return df.sort_index(key=lambda ix: ix.map(order) if ix.name == "task" else ix.map(regimes))


def summary_figure(grids: dict[str, pd.DataFrame]) -> Any:
    """One panel per task: its headline metric against the data regime, one line per
    initialisation (means over seeds, error bars two standard errors)."""
    import textwrap

    import matplotlib.pyplot as plt

    from facelib import viz
    from facelib.tasks.plots import COLUMN_IN

    viz.paper_style()
    n = max(len(grids), 1)
    cols = min(n, 2)  # two panels side by side at most: the text keeps its size in the column
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(COLUMN_IN if cols > 1 else 4.0, 2.9 * rows + 0.5),
                             squeeze=False)
    for ax, (task, grid) in zip(axes.flat, grids.items()):
        h = C.HEADLINES[task]
        agg = C.aggregate(grid, [h.metric])
        regimes = C.regime_order(agg.index.get_level_values(0))
        inits = [i for i in INIT_ORDER if i in set(grid["init"])]
        for k, init in enumerate(inits):
            pts = [(i, agg.loc[(r, init), (h.metric, "mean")], agg.loc[(r, init), (h.metric, "se")])
                   for i, r in enumerate(regimes) if (r, init) in agg.index]
            if pts:
                xs, ms, ses = zip(*pts)
                ax.errorbar(np.array(xs) + (k - 1) * 0.05, ms,
                            yerr=[2 * (s if np.isfinite(s) else 0) for s in ses], marker="o", ms=3,
                            capsize=2, lw=1.3, color=_COLORS.get(init), label=init)
        ax.set_xticks(range(len(regimes)), regimes)
        ax.set_title(f"{TITLES[task]}", fontsize=11)
        ax.set_ylabel("\n".join(textwrap.wrap(h.label + (" ↑" if h.sign > 0 else " ↓"), 24)))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(grids):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
    fig.tight_layout(rect=(0, 0.5 / fig.get_figheight(), 1, 1))
    return fig


def summary_text(comparisons: pd.DataFrame) -> str:
    """Markdown: where ours beats, matches or loses to each other initialisation, computed."""
    if not len(comparisons):
        return "No task has finished runs of both initialisations of a comparison yet."
    lines = []
    for a, b in PAIRS:
        part = comparisons[(comparisons["a"] == a) & (comparisons["b"] == b)]
        if not len(part):
            continue
        lowest = {t: C.regime_order(p["regime"])[-1] for t, p in part.groupby("task")}
        low = part[[r.regime == lowest[r.task] for r in part.itertuples()]]
        counts = {v: [f"{TITLES[r.task]} ({r.regime})" for r in low.itertuples() if r.verdict == v]
                  for v in ("better", "equal", "worse", "n/a")}
        lines.append(
            f"- `{a}` against `{b}`, at the fewest labels each task ran: better beyond two standard errors on "
            f"**{len(counts['better'])} of {len(low)}** tasks"
            + (f" ({', '.join(counts['better'])})" if counts["better"] else "")
            + (f"; equal on {', '.join(counts['equal'])}" if counts["equal"] else "")
            + (f"; **worse** on {', '.join(counts['worse'])}" if counts["worse"] else "") + ".")
        allv = part["verdict"].value_counts()
        lines.append(f"  Over every task and regime: {int(allv.get('better', 0))} better, "
                     f"{int(allv.get('equal', 0))} equal, {int(allv.get('worse', 0))} worse "
                     f"(of {len(part)} cells).")
    return "\n".join(lines)
