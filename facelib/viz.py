"""Figures: interactive plotly figures that render offline, and the paper's static style.

Jupyter Book 1 silently drops plotly's default output (``application/vnd.plotly.v1+json``), and a
CDN script fails offline. So a figure is emitted as an HTML ``<div>`` that calls ``Plotly`` with
``include_plotlyjs=False``; the book loads ``plotly.min.js`` once per page from ``_static``
(copied from the installed plotly package by :func:`copy_plotly_js`, called by ``facelib book``).
JupyterLab gets the plotly mimetype as well and renders it natively.

Used by every page that shows an interactive figure (``notebooks/09_results.py`` first).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence

import matplotlib

__all__ = [
    "PlotlyFigure",
    "plotly_figure",
    "copy_plotly_js",
    "plotly_js_path",
    "lr_schedule_figure",
    "metric_by_regime_figure",
    "flag_rows",
    "recipe_table",
]

PLOTLY_JS = "plotly.min.js"
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def plotly_js_path() -> Path:
    """Path of ``plotly.min.js`` inside the installed plotly package."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / PLOTLY_JS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: plotly.min.js is missing from the installed plotly package")
    return path


def copy_plotly_js(static_dir: Path | str) -> Path:
    """Copy ``plotly.min.js`` from the installed package into the book's ``_static`` folder.

    Returns:
        The destination path. The copy is skipped when an identical file is already there.
    """
    src = plotly_js_path()
    dst = Path(static_dir) / PLOTLY_JS
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not (dst.is_file() and dst.stat().st_size == src.stat().st_size):
        tmp = dst.with_suffix(".tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
    return dst


class PlotlyFigure:
    """A plotly figure that displays as offline HTML in the book and natively in JupyterLab."""

    def __init__(self, fig: Any, height: int | None = None) -> None:
        self.fig = fig
        self.height = height

    def to_html(self) -> str:
        """The figure as a ``<div>`` plus the script that draws it; plotly.js is not embedded."""
        return self.fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            default_height=self.height or "100%",
            config={"responsive": True, "displaylogo": False},
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {
            "text/html": self.to_html(),
            PLOTLY_MIME: self.fig.to_plotly_json(),
        }


class PlotlyBookRenderer:
    """myst-nb mime renderer (entry point ``myst_nb.mime_renderers``) for the book build.

    A :class:`PlotlyFigure` output carries the figure twice: as HTML (the book shows it) and as
    plotly JSON (for JupyterLab). myst-nb has no renderer for the JSON and would warn, which
    fails a ``-W`` build; this renders it to nothing so that the HTML copy is chosen.
    """

    mime_priority_overrides: tuple = ()

    @staticmethod
    def handle_mime(renderer: Any, data: Any, inline: bool) -> list | None:
        if data.mime_type == PLOTLY_MIME:
            return []
        return None


def plotly_figure(fig: Any, height: int | None = 480) -> PlotlyFigure:
    """Wrap a plotly figure for display: the last expression of a notebook cell.

    Args:
        fig: a ``plotly.graph_objects.Figure``.
        height: height in pixels of the figure in the book.
    """
    return PlotlyFigure(fig, height=height)


def paper_style() -> None:
    """A compact matplotlib style for the book's static figures."""
    matplotlib.rcParams.update(
        {
            "figure.dpi": 110,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "font.size": 10,
        }
    )


def lr_schedule_figure(lr: Sequence[float], iters_per_epoch: int, warmup_epochs: int, title: str = ""):
    """Matplotlib figure of a per-iteration learning-rate schedule with the warm-up marked.

    Args:
        lr: (T,) learning rate per iteration (``recipes.lr_schedule``).
        iters_per_epoch: iterations per epoch, for the epoch axis.
        warmup_epochs: end of the linear warm-up, drawn as a vertical line.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    paper_style()
    lr = np.asarray(lr)
    epochs = np.arange(len(lr)) / iters_per_epoch
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(epochs, lr, lw=1.5)
    ax.axvline(warmup_epochs, color="0.5", ls="--", lw=1)
    ax.annotate("end of warm-up", (warmup_epochs, lr.max()), xytext=(5, -12),
                textcoords="offset points", fontsize=8, color="0.3")
    ax.set_xlabel("epoch (per-iteration schedule)")
    ax.set_ylabel("learning rate")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def metric_by_regime_figure(
    df: Any,
    metrics: Sequence[str],
    regime: str = "data_amount",
    line: str = "init",
    title: str = "",
    metric_labels: dict[str, str] | None = None,
    regime_order: Sequence[str] | None = None,
) -> PlotlyFigure:
    """Interactive figure: a metric against the data regime, one line per initialisation.

    A drop-down menu switches between ``metrics``.

    Args:
        df: long table with columns ``regime``, ``line`` and each metric.
        metrics: metric columns to offer; the first is shown at start.
        regime: column of data regimes (x axis, in the table's order).
        line: column whose values make one line each.
        regime_order: x-axis order of the regimes (default: as they first appear).
    """
    import plotly.graph_objects as go

    labels = metric_labels or {}
    regimes = list(regime_order) if regime_order is not None else list(dict.fromkeys(df[regime]))
    groups = list(dict.fromkeys(df[line]))
    fig = go.Figure()
    for m_i, metric in enumerate(metrics):
        for g in groups:
            sub = df[df[line] == g].set_index(regime).reindex(regimes)
            fig.add_trace(
                go.Scatter(
                    x=regimes,
                    y=sub[metric].astype(float).tolist(),
                    mode="lines+markers",
                    name=str(g),
                    legendgroup=str(g),
                    visible=m_i == 0,
                    hovertemplate=f"{g}<br>%{{x}}: %{{y:.3f}}<extra>{labels.get(metric, metric)}</extra>",
                )
            )
    n = len(groups)
    buttons = []
    for m_i, metric in enumerate(metrics):
        visible = [m_i == j // n for j in range(len(metrics) * n)]
        buttons.append(
            dict(label=labels.get(metric, metric), method="update",
                 args=[{"visible": visible}, {"yaxis": {"title": {"text": labels.get(metric, metric)}}}])
        )
    fig.update_layout(
        title=title,
        xaxis_title="data amount",
        yaxis_title=labels.get(metrics[0], metrics[0]),
        updatemenus=[dict(buttons=buttons, direction="down", x=1.0, xanchor="right", y=1.18, yanchor="top")],
        template="plotly_white",
        margin=dict(t=80),
    )
    return plotly_figure(fig)


def flag_rows(df: Any, flag: str, color: str = "#fde0dc", precision: int = 4) -> Any:
    """A pandas Styler that shades the rows where boolean column ``flag`` is True.

    Used for tables that check numbers (e.g. printed vs recomputed averages).
    """
    def shade(row: Any) -> list[str]:
        return [f"background-color: {color}" if row[flag] else "" for _ in row]

    return df.style.apply(shade, axis=1).format(precision=precision)


def recipe_table(recipe: Any, demo: Any | None = None) -> Any:
    """A recipe as a table: one row per field with its value, section, source and note.

    Args:
        recipe: a recipe dataclass from ``facelib.recipes`` (the paper's).
        demo: the demo variant of the same recipe; its values are shown where they differ.

    Returns:
        A pandas DataFrame indexed by parameter name.
    """
    import pandas as pd

    from facelib import recipes

    table = pd.DataFrame(recipes.describe(recipe)).set_index("parameter").rename(columns={"value": "paper"})
    if demo is not None:
        changed = recipes.diff(demo, recipe)
        table.insert(1, "demo", [changed[name][0] if name in changed else "" for name in table.index])
    return table
