"""Figures and tables of the book: offline plotly figures, numbered captions, readable tables.

Jupyter Book 1 silently drops plotly's default output (``application/vnd.plotly.v1+json``), and a
CDN script fails offline. So a figure is emitted as an HTML ``<div>`` that calls ``Plotly`` with
``include_plotlyjs=False``; the book loads ``plotly.min.js`` once per page from ``_static``
(copied from the installed plotly package by :func:`copy_plotly_js`, called by ``facelib book``).
JupyterLab gets the plotly mimetype as well and renders it natively.

Readers first: :func:`figure` shows any figure (matplotlib, plotly, the face-size explorer)
followed by a numbered caption ("Figure 2. ..."; numbers per page, in order of display);
:func:`table` gives a DataFrame readable headers with units, numbered caption and ``-`` for
missing values; :func:`paper_style` sets figure text that stays legible at the book's column
width, which :func:`smallest_text_px` measures. The book's CSS (``book/_static/facelib.css``)
styles captions and makes wide tables scroll inside their box.

Used by every page that shows a figure or a table.
"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

__all__ = [
    "PlotlyFigure",
    "plotly_figure",
    "copy_plotly_js",
    "plotly_js_path",
    "figure",
    "table",
    "readable",
    "smallest_text_px",
    "paper_style",
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


#: Width in CSS pixels of the book's content column (sphinx-book-theme at a 1280-px window):
#: a wider figure is scaled down to it, and its text with it.
COLUMN_PX = 760
#: The smallest figure text, in CSS pixels at the column width, that :func:`figure` accepts
#: without a note (body text of the book is 16 px; 10 px is the usual floor for labels).
MIN_TEXT_PX = 10.0


def paper_style() -> None:
    """The matplotlib style of the book's static figures: text legible at the column width
    (11-pt labels at 110 dpi are 17 px, still 11 px when a 10-inch figure is scaled down)."""
    matplotlib.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": "figure",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "font.size": 11,
            "axes.titlesize": 12,
            "axes.labelsize": 11,
            "xtick.labelsize": 10,
            "ytick.labelsize": 10,
            "legend.fontsize": 10,
            "figure.titlesize": 13,
        }
    )


def smallest_text_px(fig: Any, column_px: int = COLUMN_PX) -> float:
    """Height in CSS pixels of the smallest visible text of a matplotlib figure in the book,
    where a figure wider than the column is scaled down to it (inf when it has no text)."""
    from matplotlib.text import Text

    width_px = fig.get_figwidth() * fig.dpi
    scale = min(1.0, column_px / width_px)
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes) * fig.dpi / 72.0 * scale if sizes else float("inf")


_NUMBERS: dict[str, dict[str, int]] = {"Figure": {}, "Table": {}}


def _number(kind: str, key: str) -> int:
    """The number of a figure or table on this page (a kernel runs one page): the same key
    keeps its number when a cell is run again."""
    seen = _NUMBERS[kind]
    if key not in seen:
        seen[key] = len(seen) + 1
    return seen[key]


def _inline(text: str) -> str:
    """Caption text as HTML: escaped, with `code` and *emphasis*."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", out)


class Caption:
    """A numbered caption; displays as HTML (styled by ``facelib.css``) and as plain text."""

    def __init__(self, kind: str, number: int, text: str) -> None:
        self.kind, self.number, self.text = kind, number, text

    def _repr_html_(self) -> str:
        return (f'<p class="facelib-caption"><span class="facelib-caption-number">{self.kind} {self.number}.'
                f"</span> {_inline(self.text)}</p>")

    def __repr__(self) -> str:
        return f"{self.kind} {self.number}. {self.text}"


def figure(fig: Any, caption: str, key: str | None = None) -> Caption:
    """Show ``fig`` and, under it, "Figure N. caption" (N counts the page's figures).

    Args:
        fig: a matplotlib figure, a plotly figure, a :class:`PlotlyFigure`, the face-size
            explorer, or anything IPython displays.
        caption: one or two sentences: what is shown and what to look for (`code`, *em*).
        key: what identifies the figure for its number (default: the caption).

    Returns:
        The caption (displayed already; a cell may end with the call).
    """
    from IPython.display import display

    number = _number("Figure", key or caption)
    if hasattr(fig, "savefig"):  # matplotlib: show it once (not again when the cell ends)
        import matplotlib.pyplot as plt

        display(fig)
        plt.close(fig)
    elif type(fig).__module__.startswith("plotly"):
        display(plotly_figure(fig))
    else:
        display(fig)
    cap = Caption("Figure", number, caption)
    display(cap)
    return _Shown(cap)


class _Shown(Caption):
    """A caption already displayed: shows nothing more as a cell's last value."""

    def __init__(self, cap: Caption) -> None:
        super().__init__(cap.kind, cap.number, cap.text)

    def _repr_html_(self) -> str:  # type: ignore[override]
        return ""

    def _ipython_display_(self) -> None:
        pass


_ABBREVIATIONS = {
    "nme": "NME", "icc": "ICC", "ccc": "CCC", "pcc": "PCC", "rmse": "RMSE", "sagr": "SAGR",
    "auc": "AUC", "tar": "TAR", "far": "FAR", "acc": "accuracy", "au": "AU", "lr": "LR", "id": "ID",
    "pct": "%", "at": "@", "px": "(px)", "io": "inter-ocular", "mae": "MAE", "fr": "failure rate",
    "ced": "CED", "lfw": "LFW", "ijb": "IJB", "va": "VA", "p5": "5th pct", "p25": "25th pct",
    "p75": "75th pct", "p95": "95th pct", "w": "width", "h": "height",
}


def readable(name: Any) -> str:
    """A column name for readers: ``tar_at_far_0.001`` -> ``TAR @ FAR 0.001``, ``nme_io`` ->
    ``NME inter-ocular``; names that already have spaces or capitals are kept."""
    text = str(name)
    if " " in text or text != text.lower() or "_" not in text and text not in _ABBREVIATIONS:
        return text
    return " ".join(_ABBREVIATIONS.get(part, part) for part in text.split("_") if part)


def table(
    df: Any,
    caption: str | None = None,
    headers: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    precision: int = 3,
    na: str = "-",
    index: bool = True,
) -> Any:
    """A DataFrame for the book: readable headers with units, a numbered caption, ``na`` for
    missing values, numbers to ``precision`` significant places.

    Args:
        df: the table.
        caption: "Table N. caption" above it (numbered per page); none: no caption.
        headers: column -> header (default: :func:`readable` of the column name).
        units: column -> unit, shown as "header (unit)".
        index: show the index.

    Returns:
        A pandas ``Styler`` (display it as a cell's last expression). Wide tables scroll inside
        their box in the book (``facelib.css``).
    """
    import numpy as np
    import pandas as pd

    headers = dict(headers or {})
    units = dict(units or {})

    def header(col: Any) -> str:
        text = headers.get(col, readable(col))
        return f"{text} ({units[col]})" if col in units else text

    shown = df.copy()
    if isinstance(shown.columns, pd.MultiIndex):
        shown.columns = pd.MultiIndex.from_tuples([tuple(header(c) for c in col) for col in shown.columns])
    else:
        shown.columns = [header(c) for c in shown.columns]
    shown.index.names = [None if n is None else header(n) for n in shown.index.names]

    def fmt(v: Any) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return na
        if isinstance(v, (float, np.floating)):
            return f"{v:,.{precision}g}" if abs(v) < 10 ** precision else f"{v:,.0f}"
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return f"{v:,}"
        return str(v)

    styler = shown.style.format(fmt).set_table_attributes('class="facelib-table"')
    if not index:
        styler = styler.hide(axis="index")
    if caption:
        cap = Caption("Table", _number("Table", caption), caption)
        styler = styler.set_caption(cap._repr_html_().replace('<p class="facelib-caption">', "").replace("</p>", ""))
    return styler


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
                textcoords="offset points", fontsize=10, color="0.3")
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
