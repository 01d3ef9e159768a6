"""Statistics of a face dataset: the face-size distribution (supplement Fig. 1) and counts.

Supplement 3: the 1,793,119 Flickr-Face faces have "a bounding box size that follows the
distribution shown in Fig. 1". These functions read the manifest written by
:mod:`facelib.faces.preprocess` (``face_w``, ``face_h``: the detector box in source pixels) and,
for Flickr-Face, the attribution columns of :mod:`facelib.flickr.build` (``tags``, ``license``,
``photo_id``). They stay fast on millions of rows: only the needed columns are read and the
histogram is one ``np.bincount`` (``benchmarks/bench_stats_histogram.py``).

The interactive figure (the book, JupyterLab and ``--html``) is :mod:`facelib.explorer`;
:func:`filter_faces` applies its filters for the command line: ``facelib stats MANIFEST``.
Shown in ``notebooks/02_flickr_face.py``.
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
    "filter_faces",
    "log_histogram",
    "add_cli",
]

# Size measures of a (w, h) box, in source pixels.
MEASURES: dict[str, str] = {
    "sqrt_area": "sqrt(width x height)",
    "width": "box width",
    "height": "box height",
    "max": "max(width, height) (the crop's box size)",
    "ratio": "face-to-image ratio sqrt(w h / (W H))",
}
# Columns each measure needs besides face_w and face_h.
_NEEDS = {"ratio": ("image_w", "image_h")}


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
    """(N,) float64 face sizes, one of :data:`MEASURES`: source pixels, or for ``ratio`` the
    face's linear size over the image's (needs ``image_w`` and ``image_h``)."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {list(MEASURES)}, got {measure!r}")
    missing = [c for c in _NEEDS.get(measure, ()) if c not in faces]
    if missing:
        raise KeyError(f"measure {measure!r} needs column(s) {missing}")
    w = faces["face_w"].to_numpy(dtype=np.float64)
    h = faces["face_h"].to_numpy(dtype=np.float64)
    if measure == "ratio":
        area = faces["image_w"].to_numpy(dtype=np.float64) * faces["image_h"].to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(w * h / area)
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
        if any(c not in faces for c in _NEEDS.get(m, ())):
            continue
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
    """Faces and photos per licence (``license`` and/or ``license_name``; ``photo_id``)."""
    keys = [c for c in ("license", "license_name") if c in faces]
    if not keys:
        raise KeyError("no 'license' or 'license_name' column")
    out = faces.groupby(keys).agg(
        faces=("photo_id", "size"), photos=("photo_id", "nunique"))
    return out.sort_values("faces", ascending=False)


def faces_per_photo(faces: pd.DataFrame, files: pd.DataFrame | None = None) -> pd.Series:
    """Number of photos with k faces, for each k.

    Args:
        faces: one row per face with a ``file`` (or ``photo_id``) column.
        files: the preprocessing's ``files.parquet`` (one row per photo); when given, photos
            without any face are counted under k = 0.
    """
    per = faces.groupby("file" if "file" in faces else "photo_id").size()
    if files is not None:
        per = per.reindex(files["file"].unique(), fill_value=0)
    return per.value_counts().sort_index().rename_axis("faces in photo").rename("photos")


# --------------------------------------------------------------------------------------------
# Filters (the explorer's, for the command line)
# --------------------------------------------------------------------------------------------
def _fpp_range(spec: str) -> tuple[int, int]:
    """``"3"`` -> (3, 3); ``"4-5"`` -> (4, 5); ``"11+"`` -> (11, inf)."""
    text = spec.strip()
    try:
        if text.endswith("+"):
            return int(text[:-1]), 1 << 30
        if "-" in text:
            a, b = text.split("-", 1)
            return int(a), int(b)
        return int(text), int(text)
    except ValueError:
        raise ValueError(f"faces per photo: expected N, N-M or N+, got {spec!r}") from None


def filter_faces(
    faces: pd.DataFrame,
    tags: Sequence[str] = (),
    licenses: Sequence[str] = (),
    faces_per_photo: Sequence[str] = (),
    min_size: float | None = None,
    max_size: float | None = None,
    measure: str = "sqrt_area",
) -> pd.DataFrame:
    """The faces that pass the explorer's filters (each given filter must hold).

    Args:
        tags: keep faces whose photo has at least one of these tags.
        licenses: keep these licences (``license_name``, or the Flickr licence id).
        faces_per_photo: keep faces of photos with this many faces: ``"1"``, ``"2-3"``, ``"6+"``.
        min_size, max_size: keep ``min_size <= size < max_size`` in the given measure.

    Raises:
        KeyError: a filter needs a column the manifest lacks (named).
    """
    keep = np.ones(len(faces), dtype=bool)
    if tags:
        if "tags" not in faces:
            raise KeyError("--tag needs a 'tags' column (a Flickr-Face manifest)")
        want = set(tags)
        keep &= faces["tags"].map(lambda t: t is not None and bool(want & set([t] if isinstance(t, str) else t))
                                  ).to_numpy(bool)
    if licenses:
        cols = [c for c in ("license_name", "license") if c in faces]
        if not cols:
            raise KeyError("--license needs a 'license_name' or 'license' column")
        want = {str(x) for x in licenses}
        keep &= np.logical_or.reduce([faces[c].astype(str).isin(want).to_numpy() for c in cols])
    if faces_per_photo:
        col = "photo_id" if "photo_id" in faces else "file" if "file" in faces else None
        if col is None:
            raise KeyError("--faces-per-photo needs a 'photo_id' or 'file' column")
        codes, _ = pd.factorize(faces[col])
        per = np.bincount(codes)[codes]
        ok = np.zeros(len(faces), dtype=bool)
        for lo, hi in map(_fpp_range, faces_per_photo):
            ok |= (per >= lo) & (per <= hi)
        keep &= ok
    if min_size is not None or max_size is not None:
        s = face_sizes(faces, measure)
        if min_size is not None:
            keep &= s >= min_size
        if max_size is not None:
            keep &= s < max_size
    return faces[keep]


def log_histogram(sizes: np.ndarray, bins_per_octave: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Histogram with log-spaced bins (``bins_per_octave`` per factor of two, powers of two on
    edges) covering the positive finite sizes. Returns (counts, edges)."""
    if bins_per_octave < 1:
        raise ValueError(f"bins_per_octave must be >= 1, got {bins_per_octave}")
    s = np.asarray(sizes, dtype=np.float64)
    s = s[np.isfinite(s) & (s > 0)]
    if not len(s):
        return np.zeros(1, np.int64), np.array([1.0, 2.0])
    k = np.log2(s) * bins_per_octave
    a, b = int(np.floor(k.min())), int(np.floor(k.max())) + 1
    edges = 2.0 ** (np.arange(a, b + 1) / bins_per_octave)
    idx = np.clip(np.floor(k).astype(np.int64) - a, 0, b - a - 1)
    return np.bincount(idx, minlength=b - a).astype(np.int64), edges


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def add_cli(subparsers: argparse._SubParsersAction) -> None:
    """``facelib stats MANIFEST``: size summary, histogram, tag/licence counts; optional HTML."""
    p = subparsers.add_parser(
        "stats", help="face-size distribution and counts of a manifest",
        description="Summarise a manifest written by 'facelib preprocess' or 'facelib flickr build': "
        "face sizes (supplement Fig. 1), faces per photo, per tag and per licence. The filters are "
        "those of the interactive explorer (--html).")
    p.add_argument("manifest", type=Path, help="manifest.parquet or flickr_face.parquet")
    p.add_argument("--measure", choices=list(MEASURES), default="sqrt_area",
                   help="size measure (ratio: sqrt(w h / (W H)), needs image_w/image_h)")
    p.add_argument("--bin-width", type=float, default=8.0, help="linear histogram bin width (default 8)")
    p.add_argument("--log-bins", type=int, default=0, metavar="PER_OCTAVE",
                   help="log-spaced bins instead, this many per factor of two")
    p.add_argument("--tag", action="append", default=[], help="keep faces of photos with this tag (repeatable)")
    p.add_argument("--license", action="append", default=[], metavar="LICENCE",
                   help="keep this licence: name (e.g. 'CC BY 2.0') or Flickr id (repeatable)")
    p.add_argument("--faces-per-photo", action="append", default=[], metavar="N|N-M|N+",
                   help="keep faces of photos with this many faces (repeatable)")
    p.add_argument("--min-size", type=float, default=None, help="keep sizes >= this (in --measure units)")
    p.add_argument("--max-size", type=float, default=None, help="keep sizes < this")
    p.add_argument("--top-tags", type=int, default=20, help="tags offered by the explorer (default 20)")
    p.add_argument("--html", type=Path, default=None,
                   help="also write the interactive explorer to this HTML file (plotly.js embedded)")
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq

    try:
        if not args.manifest.exists():
            raise FileNotFoundError(f"manifest not found: {args.manifest}")
        have = set(pq.read_schema(args.manifest).names)
        cols = [c for c in ("face_w", "face_h", "file", "photo_id", "tags", "license", "license_name",
                            "image_w", "image_h") if c in have]
        faces = load_faces(args.manifest, cols or ("face_w", "face_h"))
        total = len(faces)
        faces = filter_faces(faces, args.tag, args.license, args.faces_per_photo, args.min_size,
                             args.max_size, args.measure)
        sizes = face_sizes(faces, args.measure)
        if args.log_bins:
            counts, edges = log_histogram(sizes, args.log_bins)
        else:
            counts, edges = size_histogram(sizes, args.bin_width)
    except (FileNotFoundError, KeyError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"facelib stats: error: {msg}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 120, "display.max_rows", 200):
        kept = f" ({total - len(faces):,} dropped by the filters)" if len(faces) != total else ""
        print(f"{len(faces):,} faces in {args.manifest}{kept}\n")
        if not len(faces):
            return 0
        print(size_summary(faces).round(3 if args.measure == "ratio" else 1).to_string(), "\n")
        hist = pd.DataFrame({"from": edges[:-1], "to": edges[1:], "faces": counts})
        print(f"histogram of {MEASURES[args.measure]} (non-empty bins):")
        print(hist[hist["faces"] > 0].to_string(index=False, float_format=lambda v: f"{v:.4g}"), "\n")
        if "file" in faces or "photo_id" in faces:
            print(faces_per_photo(faces).to_string(), "\n")
        if "tags" in faces and "photo_id" in faces:
            print(tag_counts(faces).to_string(), "\n")
        if ("license_name" in faces or "license" in faces) and "photo_id" in faces:
            print(license_counts(faces).to_string())
    if args.html is not None:
        from facelib import explorer

        explorer.face_size_explorer(faces, bin_width=args.bin_width, top_tags=args.top_tags).write_html(args.html)
        print(f"explorer written to {args.html} ({args.html.stat().st_size / 1e6:.1f} MB)")
    return 0
