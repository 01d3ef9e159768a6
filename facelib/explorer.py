"""The face-size explorer (supplement Fig. 1, interactive): one function for the book, JupyterLab
and ``facelib stats --html``.

:func:`face_size_explorer` turns a face manifest (``face_w``, ``face_h``; with ``tags``,
``license_name``, ``photo_id`` or ``file``, ``image_w``/``image_h`` when present) into a
self-contained HTML widget: a plotly figure and its controls, drawn by ``explorer.js`` in the
browser, so that everything works in the static book without a kernel:

* the size measure: sqrt(w h), width, height, or the face-to-image ratio sqrt(w h / (W H));
* four views: linear; log size (log x, log-spaced bins); log counts (log y); log-log (both,
  log-spaced bins);
* a two-ended size range (two sliders) with a live read-out of the faces kept and dropped;
* filters: tags (several at once, overlaid, as counts or normalised densities), licence, faces
  per photo; the dotted curves (right axis, ticks at round percentages) read the share of
  faces at or above any size;
* CSV export of the histogram shown; the figure's height is fixed in the figure, so it renders
  the same in the book and in JupyterLab.

The browser never sees the boxes, only counts: for each size measure and each binning (linear,
``bin_width`` px; log, ``bins_per_octave`` per octave), one count per (tag group, licence,
faces-per-photo class, bin), built here with a few ``np.bincount`` calls; 1.79M boxes make
about a megabyte of counts (``benchmarks/bench_stats_histogram.py`` times it and prints the
HTML size). A face counts under every tag of its photo, and once under "all tags".

plotly.js comes from the installed plotly package: in the book the page loads it once from
``_static`` (``facelib book`` sets ``FACELIB_BOOK`` in its kernels); in a live kernel the first
figure of the session embeds it; :meth:`Explorer.write_html` embeds it in a standalone page.

Shown in ``notebooks/02_flickr_face.py``; command line: ``facelib stats MANIFEST --html F``.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from facelib import stats

__all__ = ["FPP_CLASSES", "VIEWS", "Explorer", "explorer_data", "face_size_explorer"]

#: Faces-per-photo classes: (label, smallest, largest).
FPP_CLASSES: tuple[tuple[str, int, int], ...] = (
    ("1", 1, 1), ("2", 2, 2), ("3", 3, 3), ("4-5", 4, 5), ("6-10", 6, 10), ("11+", 11, 1 << 30))
VIEWS: dict[str, str] = {"linear": "linear", "logsize": "log size", "logcount": "log counts",
                         "loglog": "log-log"}
_JS = Path(__file__).with_name("explorer.js")
_MEASURE_LABELS = {"sqrt_area": ("sqrt(w h)", "px"), "width": ("width", "px"), "height": ("height", "px"),
                   "ratio": ("face / image, sqrt(w h / (W H))", "")}
_SENT_PLOTLY = False  # a live kernel embeds plotly.js in its first explorer only


def _rle(counts: np.ndarray) -> list[int]:
    """Counts with runs of zeros written as one negative number (-k: k zeros)."""
    out: list[int] = []
    zeros = 0
    for v in counts.tolist():
        if v == 0:
            zeros += 1
            continue
        if zeros:
            out.append(-zeros)
            zeros = 0
        out.append(int(v))
    if zeros:
        out.append(-zeros)
    return out


def _linear_edges(top: float, width: float) -> np.ndarray:
    n = max(1, int(np.ceil(top / width)))
    return np.arange(n + 1, dtype=np.float64) * width


def _log_edges(lo: float, hi: float, per_octave: int) -> np.ndarray:
    a = np.floor(np.log2(lo) * per_octave) / per_octave
    b = np.ceil(np.log2(hi) * per_octave) / per_octave
    b = max(b, a + 1.0 / per_octave)
    return 2.0 ** np.arange(a, b + 0.5 / per_octave, 1.0 / per_octave)


def _bin_index(values: np.ndarray, edges: np.ndarray, log: bool) -> np.ndarray:
    """Bin of each value (values outside go to the first or last bin); -1 for invalid ones."""
    nb = len(edges) - 1
    ok = np.isfinite(values) & (values > 0)
    out = np.full(len(values), -1, np.int64)
    v = values[ok]
    if log:
        k = np.floor((np.log2(v) - np.log2(edges[0])) * round(1 / (np.log2(edges[1]) - np.log2(edges[0])))
                     + 1e-9).astype(np.int64)
    else:
        k = np.floor(v / (edges[1] - edges[0])).astype(np.int64)
    out[ok] = np.clip(k, 0, nb - 1)
    return out


def _tag_array(tags: Any) -> Any:
    """A pyarrow list<string> array of the tags of each face (from a list column or arrow)."""
    import pyarrow as pa

    if isinstance(tags, pa.ChunkedArray):
        tags = tags.combine_chunks()
    if isinstance(tags, pa.Array):
        return tags.cast(pa.list_(pa.string()))
    try:
        return pa.array(tags, type=pa.list_(pa.string()), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # strings, tuples, None mixed in
        return pa.array([[t] if isinstance(t, str) else ([] if t is None else [str(x) for x in t])
                         for t in tags], type=pa.list_(pa.string()))


def _tag_groups(tags: Any, top: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The ``top`` tags with most faces, and (face row, group number >= 1) for each of their uses."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = _tag_array(tags)
    flat = pc.list_flatten(arr)
    if top <= 0 or len(flat) == 0:
        return [], np.zeros(0, np.int64), np.zeros(0, np.int64)
    vc = pc.value_counts(flat).to_pylist()
    vc.sort(key=lambda d: (-d["counts"], str(d["values"])))
    names = [str(d["values"]) for d in vc[:top] if d["values"] is not None]
    parent = pc.list_parent_indices(arr).to_numpy()
    code = pc.index_in(flat, value_set=pa.array(names, pa.string())).to_numpy(zero_copy_only=False)
    keep = ~pd.isna(code)
    return names, parent[keep].astype(np.int64), code[keep].astype(np.int64) + 1


def explorer_data(
    faces: pd.DataFrame,
    bin_width: float = 8.0,
    bins_per_octave: int = 8,
    top_tags: int = 20,
    ratio_bins: int = 50,
    title: str = "",
    tags: Any = None,
) -> dict[str, Any]:
    """The counts the explorer draws from, as a JSON-ready dict (see the module doc).

    Args:
        faces: one row per face: ``face_w``, ``face_h`` (px); optional ``tags`` (a list per
            face), ``license_name`` (or ``license``), ``photo_id`` (or ``file``: faces per
            photo), ``image_w`` and ``image_h`` (the ratio measure).
        bin_width: linear bins in pixels.
        bins_per_octave: log-spaced bins per factor of two.
        top_tags: tags offered (those with most faces).
        ratio_bins: linear bins of the ratio measure over [0, 1].
        tags: the tags of each face as a pyarrow list array (read straight from parquet: much
            faster than a column of Python lists); default: ``faces["tags"]``.

    Raises:
        ValueError: no faces, or bad binning arguments.
    """
    if len(faces) == 0:
        raise ValueError("no faces to explore")
    if bin_width <= 0 or bins_per_octave < 1 or ratio_bins < 1:
        raise ValueError("bin_width must be > 0, bins_per_octave and ratio_bins >= 1")
    n = len(faces)
    # Filters: licence, faces-per-photo class (codes per face).
    lic_col = "license_name" if "license_name" in faces else "license" if "license" in faces else None
    if lic_col is not None:
        lic_codes, lic_names = pd.factorize(faces[lic_col].astype(str), sort=True)
        lic_names = [str(x) for x in lic_names]
    else:
        lic_codes, lic_names = np.zeros(n, np.int64), ["all licences"]
    photo_col = "photo_id" if "photo_id" in faces else "file" if "file" in faces else None
    if photo_col is not None:
        photo_codes, _ = pd.factorize(faces[photo_col])
        per_photo = np.bincount(photo_codes)[photo_codes]
        fpp_codes = np.zeros(n, np.int64)
        for k, (_, lo, hi) in enumerate(FPP_CLASSES):
            fpp_codes[(per_photo >= lo) & (per_photo <= hi)] = k
        fpp_names = [c[0] for c in FPP_CLASSES]
    else:
        fpp_codes, fpp_names = np.zeros(n, np.int64), ["any"]
    n_lic, n_fpp = len(lic_names), len(fpp_names)
    # Tag groups: "all tags" (0) and the top tags.
    tag_names: list[str] = []
    pair_rows = pair_groups = np.zeros(0, np.int64)
    if tags is None and "tags" in faces:
        tags = faces["tags"]
    if tags is not None:
        tag_names, pair_rows, pair_groups = _tag_groups(tags, top_tags)
    groups = ["all tags"] + tag_names
    measures: dict[str, Any] = {}
    for m, (label, unit) in _MEASURE_LABELS.items():
        if m == "ratio":
            if not {"image_w", "image_h"} <= set(faces.columns):
                continue
            s = stats.face_sizes(faces, "ratio")
        else:
            s = stats.face_sizes(faces, m)
        good = s[np.isfinite(s) & (s > 0)]
        if not len(good):
            continue
        if m == "ratio":
            lin = np.linspace(0.0, 1.0, ratio_bins + 1)
            log = _log_edges(max(float(good.min()), 2.0**-12), 1.0, bins_per_octave)
        else:
            lin = _linear_edges(float(good.max()) * (1 + 1e-9) + 1e-9, bin_width)
            log = _log_edges(max(float(good.min()), 1.0), max(float(good.max()) * (1 + 1e-9), 2.0), bins_per_octave)
        entry: dict[str, Any] = {"label": label, "unit": unit}
        for kind, edges in (("lin", lin), ("log", log)):
            b = _bin_index(s, edges, kind == "log")
            nb = len(edges) - 1
            ok = b >= 0
            cell = (lic_codes * n_fpp + fpp_codes) * nb + b  # per face, within a group
            size = n_lic * n_fpp * nb
            cube = np.zeros((len(groups), size), np.int64)
            cube[0] = np.bincount(cell[ok], minlength=size)
            if len(pair_rows):
                okp = ok[pair_rows]
                flat = pair_groups[okp] * size + cell[pair_rows[okp]]
                cube += np.bincount(flat, minlength=len(groups) * size).reshape(len(groups), size)
            entry[kind] = {"edges": [float(f"{e:.12g}") for e in edges], "counts": _rle(cube.ravel())}
        measures[m] = entry
    return {
        "title": title, "faces": n, "groups": groups, "licences": lic_names, "fpp": fpp_names,
        "measures": measures, "views": VIEWS, "bin_width": bin_width, "bins_per_octave": bins_per_octave,
    }


@dataclass
class Explorer:
    """The explorer's data and its HTML; display it as a cell's last expression."""

    data: dict[str, Any]
    height: int = 460

    def _fragment(self, plotly: str) -> str:
        uid = "facelib-explorer-" + uuid.uuid4().hex[:10]
        payload = json.dumps(self.data, separators=(",", ":")).replace("</", "<\\/")
        js = _JS.read_text(encoding="utf-8")
        return (
            f'<div class="facelib-explorer" id="{uid}" style="font-family:sans-serif;font-size:14px"></div>\n'
            f"{plotly}"
            f'<script type="application/json" id="{uid}-data">{payload}</script>\n'
            f"<script>\n{js}\nfacelibExplorer(document.getElementById('{uid}'), "
            f"JSON.parse(document.getElementById('{uid}-data').textContent), {int(self.height)});\n</script>\n"
        )

    def to_html(self, plotly_js: bool | None = None) -> str:
        """The explorer as an HTML fragment.

        Args:
            plotly_js: embed plotly.js (guarded, so a page that has it does not load it twice).
                Default: not in the book (``FACELIB_BOOK`` set by ``facelib book``); in a live
                kernel, only in the first explorer of the session.
        """
        global _SENT_PLOTLY
        if plotly_js is None:
            plotly_js = not os.environ.get("FACELIB_BOOK") and not _SENT_PLOTLY
        script = ""
        if plotly_js:
            from facelib import viz

            code = viz.plotly_js_path().read_text(encoding="utf-8")
            script = f"<script>if (!window.Plotly) {{\n{code}\n}}</script>\n"
            _SENT_PLOTLY = True
        return self._fragment(script)

    def write_html(self, path: Path | str, title: str = "Face sizes") -> Path:
        """A standalone page (plotly.js embedded), written atomically."""
        from facelib import storage, viz

        path = Path(path)
        code = viz.plotly_js_path().read_text(encoding="utf-8")
        page = (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title>\n"
                f"<script>{code}</script></head>\n<body style='max-width:1100px;margin:1em auto'>\n"
                f"{self._fragment('')}</body></html>\n")
        tmp = storage.atomic_path(path)
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, path)
        return path

    def _repr_html_(self) -> str:
        return self.to_html()


def face_size_explorer(
    faces: pd.DataFrame,
    bin_width: float = 8.0,
    bins_per_octave: int = 8,
    top_tags: int = 20,
    title: str = "",
    height: int = 460,
) -> Explorer:
    """The interactive face-size explorer of a face manifest (see the module doc).

    Args:
        faces: manifest rows (``face_w``, ``face_h``; ``tags``, ``license_name``, ``photo_id``
            or ``file``, ``image_w``/``image_h`` when present).
        bin_width: linear bin width in pixels.
        bins_per_octave: log-spaced bins per factor of two (log views).
        top_tags: tags offered by the tag filter (those with most faces).
        title: shown above the figure.
        height: the figure's height in pixels (set in the figure: the same everywhere).

    Returns:
        An :class:`Explorer` (display it, or ``.write_html(path)``).
    """
    return Explorer(explorer_data(faces, bin_width, bins_per_octave, top_tags, title=title), height)
