"""Face-size histogram over a Flickr-Face-sized manifest (1,793,119 rows): goal < 1 s.

Writes a parquet manifest with the columns :mod:`facelib.faces.preprocess` writes (file, box,
score, 5 landmarks, face and image sizes, crop transform, shard, index) plus the attribution
columns of :mod:`facelib.flickr.build` (photo id, 1-3 of the 100 tags per photo, licence) and
1,793,119 rows (supplement 3), then times, from reading the file to the counts:

* ``facelib``: :func:`facelib.stats.load_faces` (two columns) -> ``face_sizes`` ->
  ``size_histogram`` (one ``np.bincount``);
* ``baseline``: what one writes without it: ``pd.read_parquet`` of the whole manifest, then
  ``pd.cut(...).value_counts()`` with the same bins.

Best of ``--repeat`` runs each; the counts of the two are checked equal. It also times the
face-size explorer on the same boxes (:func:`facelib.explorer.explorer_data`: every measure,
both binnings, 20 tags, licences, faces per photo; tags read as arrow) and prints the size of
the page ``facelib stats --html`` writes (plotly.js included). Results also go to
``benchmarks/measured/bench_stats_histogram.json`` (read by ``notebooks/02_flickr_face.py``).
Usage: ``python benchmarks/bench_stats_histogram.py [--rows 1793119]``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from facelib import recipes, stats

GOAL_S = 1.0
HERE = Path(__file__).resolve().parent


def make_manifest(path: Path, rows: int, seed: int = 0) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from facelib.flickr.tags import TAGS

    rng = np.random.default_rng(seed)
    w = rng.lognormal(3.6, 0.7, rows).astype(np.float64)
    h = w * rng.normal(1.25, 0.1, rows)
    x1 = rng.uniform(0, 400, rows)
    y1 = rng.uniform(0, 300, rows)
    photo = rng.integers(0, rows // 2, rows)
    df = pd.DataFrame({
        "file": pd.Series(photo).map(lambda i: f"images/{i % 100:02d}/{50_000_000_000 + i}.jpg"),
        "face": rng.integers(0, 4, rows), "x1": x1, "y1": y1, "x2": x1 + w, "y2": y1 + h,
        "score": rng.uniform(0.5, 1, rows),
        **{f"lmk{k}_{c}": rng.uniform(0, 500, rows) for k in range(5) for c in "xy"},
        "face_w": w, "face_h": h, "image_w": np.full(rows, 500), "image_h": np.full(rows, 375),
        "crop_scale": rng.uniform(0.5, 5, rows), "crop_tx": rng.normal(size=rows), "crop_ty": rng.normal(size=rows),
        "shard": pd.Series(np.arange(rows) // 1000).map(lambda i: f"crops-{i:05d}.h5"),
        "index": np.arange(rows) % 1000,
        "photo_id": (50_000_000_000 + photo).astype(str),
        "license_name": np.array(["CC BY 2.0", "CC0 1.0", "Public Domain Mark 1.0", "CC BY 4.0"])[
            rng.integers(0, 4, rows)],
    })
    n_photos = rows // 2  # each photo 1-3 of the 100 tags; a face has its photo's tags
    per = rng.integers(1, 4, n_photos)
    offsets = np.concatenate([[0], np.cumsum(per)]).astype(np.int32)
    photo_tags = pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.array(TAGS)[rng.integers(0, 100, offsets[-1])]))
    table = pa.Table.from_pandas(df, preserve_index=False).append_column("tags", photo_tags.take(pa.array(photo)))
    pq.write_table(table, path)


def explorer(path: Path) -> tuple[float, float]:
    """Seconds from the file to the explorer's counts, and the MB of the page it makes."""
    import pyarrow.parquet as pq

    from facelib import explorer as ex

    t = time.perf_counter()
    cols = ["face_w", "face_h", "photo_id", "license_name", "image_w", "image_h"]
    table = pq.read_table(path, columns=cols + ["tags"])
    data = ex.explorer_data(table.select(cols).to_pandas(), tags=table["tags"])
    seconds = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        page = ex.Explorer(data).write_html(Path(tmp) / "sizes.html")
        return seconds, page.stat().st_size / 1e6


def ours(path: Path, bin_width: float, top: float) -> np.ndarray:
    faces = stats.load_faces(path)
    return stats.size_histogram(stats.face_sizes(faces, "sqrt_area"), bin_width, top)[0]


def baseline(path: Path, bin_width: float, top: float) -> np.ndarray:
    df = pd.read_parquet(path)
    size = np.sqrt(df["face_w"] * df["face_h"]).clip(upper=top - 1e-9)
    edges = np.arange(0, top + bin_width, bin_width)
    return pd.cut(size, edges, right=False).value_counts(sort=False).to_numpy()


def plotly_mb() -> float:
    from facelib import viz

    return viz.plotly_js_path().stat().st_size / 1e6


def best(fn, repeat: int, *args) -> tuple[float, np.ndarray]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=recipes.datasets().flickr_face_faces)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "manifest.parquet"
        make_manifest(path, args.rows)
        mb = path.stat().st_size / 1e6
        t_ours, c_ours = best(ours, args.repeat, path, 8.0, 1024.0)
        t_base, c_base = best(baseline, args.repeat, path, 8.0, 1024.0)
        t_explorer, html_mb = explorer(path)
    assert np.array_equal(c_ours, c_base), "the two histograms differ"
    print(f"{args.rows:,} faces, manifest {mb:.0f} MB, 8-px bins of sqrt(w h):")
    print(f"  facelib.stats (2 columns, bincount): {t_ours:.3f} s "
          f"(goal < {GOAL_S:g} s: {'met' if t_ours < GOAL_S else 'NOT met'})")
    print(f"  baseline (whole manifest, pd.cut):   {t_base:.3f} s")
    print(f"  speed-up: {t_base / t_ours:.1f}x")
    print(f"explorer (4 measures x 2 binnings, 20 tags, licences, faces per photo): {t_explorer:.2f} s; "
          f"facelib stats --html page: {html_mb:.1f} MB (plotly.js {plotly_mb():.1f} MB of it)")
    if not args.no_save:
        res = {"benchmark": "bench_stats_histogram", "date": _dt.date.today().isoformat(),
               "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "rows": args.rows,
               "seconds": round(t_ours, 3), "baseline_seconds": round(t_base, 3),
               "speedup": round(t_base / t_ours, 1), "goal_seconds": GOAL_S,
               "explorer_seconds": round(t_explorer, 2), "explorer_html_mb": round(html_mb, 1)}
        dst = HERE / "measured" / "bench_stats_histogram.json"
        dst.parent.mkdir(exist_ok=True)
        dst.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
