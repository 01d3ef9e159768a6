"""Statistics of a face dataset: the face-size distribution (supplement Fig. 1) and counts.

Supplement 3: the 1,793,119 Flickr-Face faces have "a bounding box size that follows the
distribution shown in Fig. 1". These functions read the manifest written by
:mod:`facelib.faces.preprocess` (``face_w``, ``face_h``: the detector box in source pixels) and,
for Flickr-Face, the attribution columns of :mod:`facelib.flickr.build` (``tags``, ``license``,
``photo_id``). They stay fast on millions of rows: only the needed columns are read and the
histogram is one ``np.bincount`` (``benchmarks/bench_stats_histogram.py``).

:func:`face_size_figure` is the interactive figure of the book (plotly menus and a slider work
in the static HTML); :func:`face_size_explorer` is an ipywidgets version for JupyterLab.
Command line: ``facelib stats MANIFEST``. Shown in ``notebooks/02_flickr_face.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "MEASURES",
    "load_faces",
    "face_sizes",
    "size_histogram",
    "size_summary",
    "tag_counts",
    "license_counts",
    "faces_per_photo",
    "face_size_figure",
    "face_size_explorer",
    "add_cli",
]

# Size measures of a (w, h) box, in source pixels.
MEASURES: dict[str, str] = {
    "sqrt_area": "sqrt(width x height)",
    "width": "box width",
    "height": "box height",
    "max": "max(width, height) (the crop's box size)",
}


def load_faces(path: Path | str, columns: Sequence[str] = ("face_w", "face_h")) -> pd.DataFrame:
    """Read only ``columns`` of a parquet manifest (fast on millions of rows).

    Raises:
        FileNotFoundError: no such manifest. KeyError: a column is missing (names it and the file).
    """
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"manifest not found: {path}")
    have = set(pq.read_schema(path).names)
    missing = [c for c in columns if c not in have]
    if missing:
        raise KeyError(f"{path}: no column(s) {missing}; it has {sorted(have)}")
    return pq.read_table(path, columns=list(columns)).to_pandas()


def face_sizes(faces: pd.DataFrame, measure: str = "sqrt_area") -> np.ndarray:
    """(N,) float64 face sizes in source pixels, one of :data:`MEASURES`."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {list(MEASURES)}, got {measure!r}")
    w = faces["face_w"].to_numpy(dtype=np.float64)
    h = faces["face_h"].to_numpy(dtype=np.float64)
    if measure == "width":
        return w
    if measure == "height":
        return h
    if measure == "max":
        return np.maximum(w, h)
    return np.sqrt(w * h)


def size_histogram(sizes: np.ndarray, bin_width: float = 8.0,
                   max_size: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of face sizes with bins ``[k * bin_width, (k + 1) * bin_width)``.

    Args:
        sizes: (N,) sizes in pixels; NaN and negative values are ignored.
        bin_width: bin width in pixels.
        max_size: right edge of the last bin (default: the largest size, rounded up); larger
            sizes are counted in the last bin.

    Returns:
        (counts (B,) int64, edges (B + 1,) float64). Same counts as ``np.histogram`` with these
        edges, in one pass.
    """
    if bin_width <= 0:
        raise ValueError(f"bin_width must be > 0, got {bin_width}")
    s = np.asarray(sizes, dtype=np.float64)
    s = s[np.isfinite(s) & (s >= 0)]
    top = float(max_size) if max_size is not None else (float(s.max()) if len(s) else bin_width)
    n_bins = max(1, int(np.ceil(top / bin_width)))
    if max_size is None and len(s) and top == n_bins * bin_width:
        n_bins += 1  # the largest size sits exactly on an edge: give it its own bin
    idx = np.minimum((s / bin_width).astype(np.int64), n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins).astype(np.int64)
    return counts, np.arange(n_bins + 1, dtype=np.float64) * bin_width


def size_summary(faces: pd.DataFrame) -> pd.DataFrame:
    """Count, mean and quantiles of every size measure (one row per measure)."""
    rows = {}
    for m in MEASURES:
        s = face_sizes(faces, m)
        q = np.percentile(s, [5, 25, 50, 75, 95]) if len(s) else [np.nan] * 5
        rows[m] = {"faces": len(s), "mean": s.mean() if len(s) else np.nan, "p5": q[0], "p25": q[1],
                   "median": q[2], "p75": q[3], "p95": q[4], "max": s.max() if len(s) else np.nan}
    return pd.DataFrame(rows).T


def tag_counts(faces: pd.DataFrame) -> pd.DataFrame:
    """Faces and photos per query tag (a face counts once under each tag of its photo).

    Needs columns ``tags`` (a list per face) and ``photo_id``. Sorted by faces, descending.
    """
    ex = faces[["photo_id", "tags"]].explode("tags").dropna(subset=["tags"])
    out = ex.groupby("tags").agg(faces=("photo_id", "size"), photos=("photo_id", "nunique"))
    return out.rename_axis("tag").sort_values(["faces", "photos"], ascending=False)


def license_counts(faces: pd.DataFrame) -> pd.DataFrame:
    """Faces and photos per licence (columns ``license``, ``license_name``, ``photo_id``)."""
    out = faces.groupby(["license", "license_name"]).agg(
        faces=("photo_id", "size"), photos=("photo_id", "nunique"))
    return out.sort_values("faces", ascending=False)


def faces_per_photo(faces: pd.DataFrame, files: pd.DataFrame | None = None) -> pd.Series:
    """Number of photos with k faces, for each k.

    Args:
        faces: one row per face with a ``file`` column.
        files: the preprocessing's ``files.parquet`` (one row per photo); when given, photos
            without any face are counted under k = 0.
    """
    per = faces.groupby("file").size()
    if files is not None:
        per = per.reindex(files["file"].unique(), fill_value=0)
    return per.value_counts().sort_index().rename_axis("faces in photo").rename("photos")


# --------------------------------------------------------------------------------------------
# Interactive figures
# --------------------------------------------------------------------------------------------
def _groups(faces: pd.DataFrame, top_tags: int) -> list[tuple[str, np.ndarray]]:
    """("all tags", every row) plus the ``top_tags`` tags with most faces, as row masks."""
    groups = [("all tags", np.ones(len(faces), dtype=bool))]
    if top_tags > 0 and "tags" in faces:
        ex = faces["tags"].reset_index(drop=True).explode().dropna()
        order = ex.value_counts().index[:top_tags]
        for t in order:
            m = np.zeros(len(faces), dtype=bool)
            m[ex.index[ex.to_numpy() == t].to_numpy()] = True
            groups.append((str(t), m))
    return groups


def face_size_figure(
    faces: pd.DataFrame,
    bin_width: float = 8.0,
    max_size: float | None = None,
    top_tags: int = 15,
    thresholds: Sequence[int] = (0, 16, 24, 32, 48, 64, 96, 128),
    measure: str = "sqrt_area",
    title: str = "Face sizes",
    height: int = 520,
) -> Any:
    """Interactive histogram of face sizes (supplement Fig. 1) for the book and JupyterLab.

    Controls (plotly menus, so they work in the static HTML): the size measure
    (:data:`MEASURES`), linear/log axes, a tag filter (all tags or one of the ``top_tags`` tags
    with most faces) and a minimum-size threshold (a slider that shades the faces it would drop;
    the dotted curve on the right axis reads how many faces remain at or above any size).

    Args:
        faces: manifest rows (``face_w``, ``face_h``; ``tags`` for the tag filter).
        bin_width: histogram bin width in pixels.
        max_size: right end of the x axis (default: the largest face).
        top_tags: tags offered by the tag filter.
        thresholds: slider positions in pixels.
        measure: the measure shown first.

    Returns:
        A :class:`facelib.viz.PlotlyFigure` (display it as a cell's last expression).
    """
    import plotly.graph_objects as go

    from facelib import viz

    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {list(MEASURES)}, got {measure!r}")
    if len(faces) == 0:
        raise ValueError("no faces to plot")
    sizes = {m: face_sizes(faces, m) for m in MEASURES}
    top = max_size if max_size is not None else max(float(s.max()) for s in sizes.values()) + bin_width
    groups = _groups(faces, top_tags)
    edges = size_histogram(np.zeros(0), bin_width, top)[1]
    left = edges[:-1]
    data: dict[str, list[list[float]]] = {m: [] for m in MEASURES}
    text: dict[str, list[list[str]]] = {m: [] for m in MEASURES}
    for m, s in sizes.items():
        for _, mask in groups:
            counts, _ = size_histogram(s[mask], bin_width, top)
            n = max(int(counts.sum()), 1)
            surv = counts[::-1].cumsum()[::-1]
            data[m] += [counts.tolist(), (surv / n).tolist()]
            text[m] += [[f"{a:g}-{a + bin_width:g} px: {c:,} faces" for a, c in zip(left, counts)],
                        [f">= {a:g} px: {c:,} faces ({c / n:.1%})" for a, c in zip(left, surv)]]
    fig = go.Figure()
    for gi, (name, _) in enumerate(groups):
        k = 2 * gi
        fig.add_trace(go.Scatter(
            x=left.tolist(), y=data[measure][k], text=text[measure][k], hoverinfo="text",
            mode="lines", line=dict(shape="hv", width=1.5), fill="tozeroy", name=f"{name}: faces per bin",
            visible=gi == 0, legendgroup=name))
        fig.add_trace(go.Scatter(
            x=left.tolist(), y=data[measure][k + 1], text=text[measure][k + 1], hoverinfo="text",
            mode="lines", line=dict(dash="dot", width=1.5), yaxis="y2", name=f"{name}: share >= size",
            visible=gi == 0, legendgroup=name))
    n_traces = 2 * len(groups)
    measure_buttons = [
        dict(label=MEASURES[m], method="update",
             args=[{"y": data[m], "text": text[m]}, {"xaxis.title.text": f"face size: {MEASURES[m]} (px)"}])
        for m in MEASURES
    ]
    tag_buttons = [
        dict(label=f"{name} ({int(mask.sum()):,})", method="restyle",
             args=[{"visible": [j // 2 == gi for j in range(n_traces)]}])
        for gi, (name, mask) in enumerate(groups)
    ]
    axis_buttons = [
        dict(label="linear axes", method="relayout", args=[{"xaxis.type": "linear", "yaxis.type": "linear"}]),
        dict(label="log counts", method="relayout", args=[{"xaxis.type": "linear", "yaxis.type": "log"}]),
        dict(label="log-log", method="relayout", args=[{"xaxis.type": "log", "yaxis.type": "log"}]),
    ]
    steps = []
    for t in thresholds:
        shapes = [] if t <= 0 else [dict(type="rect", xref="x", yref="paper", x0=0.5, x1=t, y0=0, y1=1,
                                         fillcolor="grey", opacity=0.25, line=dict(width=0))]
        steps.append(dict(label=f"{t}", method="relayout", args=[{"shapes": shapes}]))
    menu = dict(direction="down", showactive=True, y=1.16, yanchor="top", xanchor="left")
    fig.update_layout(
        title=dict(text=title, y=0.98, x=0.02, xanchor="left", font=dict(size=14)),
        template="plotly_white",
        xaxis=dict(title=dict(text=f"face size: {MEASURES[measure]} (px)"), rangemode="tozero"),
        yaxis=dict(title=dict(text="faces per bin")),
        yaxis2=dict(title=dict(text="share of faces >= size"), overlaying="y", side="right",
                    range=[0, 1.02], showgrid=False, tickformat=".0%"),
        updatemenus=[
            dict(menu, buttons=measure_buttons, x=0.0, active=list(MEASURES).index(measure)),
            dict(menu, buttons=tag_buttons, x=0.36),
            dict(menu, buttons=axis_buttons, x=0.62, type="buttons", direction="right"),
        ],
        sliders=[dict(active=0, steps=steps, x=0.0, len=1.0, y=-0.12, yanchor="top",
                      currentvalue=dict(prefix="minimum face size (shaded: dropped): ", suffix=" px"))],
        showlegend=False,  # the axis titles name the two curves
        margin=dict(t=120, b=110),
    )
    return viz.plotly_figure(fig, height=height)


def face_size_explorer(faces: pd.DataFrame, bin_width: float = 8.0) -> Any:
    """An ipywidgets explorer of face sizes, for JupyterLab (needs a live kernel; not in the book).

    Widgets: measure, tag (any tag of the data), log counts, minimum size; the histogram and the
    number of faces kept are redrawn on every change.

    Returns:
        An ``ipywidgets.VBox``: the controls, a line with the number of faces kept
        (``.children[2]``) and the output area (``.children[3]``).
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt

    tags = ["all tags"]
    if "tags" in faces:
        tags += list(faces["tags"].explode().dropna().value_counts().index.astype(str))
    sizes = {m: face_sizes(faces, m) for m in MEASURES}
    ex = faces["tags"].reset_index(drop=True).explode().dropna() if "tags" in faces else None
    top = max(float(s.max()) for s in sizes.values()) if len(faces) else bin_width
    measure = w.Dropdown(options=[(v, k) for k, v in MEASURES.items()], value="sqrt_area", description="measure")
    tag = w.Dropdown(options=tags, value="all tags", description="tag")
    logy = w.Checkbox(value=False, description="log counts")
    min_size = w.IntSlider(value=0, min=0, max=int(top) + 1, step=1, description="min size (px)")
    info = w.HTML()
    out = w.Output()

    def redraw(*_: Any) -> None:
        s = sizes[measure.value]
        if tag.value != "all tags" and ex is not None:
            rows = np.unique(ex.index[ex.to_numpy() == tag.value].to_numpy())
            s = s[rows]
        kept = s[s >= min_size.value]
        counts, edges = size_histogram(kept, bin_width, top + bin_width)
        info.value = f"<b>{tag.value}</b>: {len(kept):,} of {len(s):,} faces >= {min_size.value} px"
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(7, 3))
            ax.stairs(counts, edges, fill=True)
            ax.set_yscale("log" if logy.value else "linear")
            ax.set_xlabel(f"face size: {MEASURES[measure.value]} (px)")
            ax.set_ylabel("faces per bin")
            ax.set_title(f"{tag.value}: {len(kept):,} of {len(s):,} faces >= {min_size.value} px")
            plt.show()

    for c in (measure, tag, logy, min_size):
        c.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox([measure, tag]), w.HBox([logy, min_size]), info, out])


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def add_cli(subparsers: argparse._SubParsersAction) -> None:
    """``facelib stats MANIFEST``: size summary, histogram, tag/licence counts; optional HTML."""
    p = subparsers.add_parser(
        "stats", help="face-size distribution and counts of a face manifest",
        description="Summarise a manifest written by 'facelib preprocess' or 'facelib flickr build': "
        "face sizes (supplement Fig. 1), faces per photo, per tag and per licence.")
    p.add_argument("manifest", type=Path, help="manifest.parquet or flickr_face.parquet")
    p.add_argument("--measure", choices=list(MEASURES), default="sqrt_area")
    p.add_argument("--bin-width", type=float, default=8.0, help="histogram bin width in px (default 8)")
    p.add_argument("--html", type=Path, default=None,
                   help="also write the interactive figure to this HTML file (plotly.js embedded)")
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq

    try:
        have = set(pq.read_schema(args.manifest).names) if args.manifest.exists() else set()
        cols = [c for c in ("face_w", "face_h", "file", "photo_id", "tags", "license", "license_name")
                if c in have]
        faces = load_faces(args.manifest, cols or ("face_w", "face_h"))
        counts, edges = size_histogram(face_sizes(faces, args.measure), args.bin_width)
    except (FileNotFoundError, KeyError, ValueError) as e:
        print(f"facelib stats: error: {e}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 120, "display.max_rows", 200):
        print(f"{len(faces):,} faces in {args.manifest}\n")
        print(size_summary(faces).round(1).to_string(), "\n")
        hist = pd.DataFrame({"from_px": edges[:-1], "to_px": edges[1:], "faces": counts})
        print(f"histogram of {MEASURES[args.measure]} (non-empty bins):")
        print(hist[hist["faces"] > 0].to_string(index=False), "\n")
        if "file" in faces:
            print(faces_per_photo(faces).to_string(), "\n")
        if "tags" in faces and "photo_id" in faces:
            print(tag_counts(faces).to_string(), "\n")
        if "license_name" in faces and "photo_id" in faces:
            print(license_counts(faces).to_string())
    if args.html is not None and len(faces):
        fig = face_size_figure(faces, bin_width=args.bin_width, measure=args.measure).fig
        fig.write_html(args.html, include_plotlyjs=True)
        print(f"figure written to {args.html}")
    return 0
