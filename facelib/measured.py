"""Numbers measured by the scripts in ``benchmarks/`` on machines we do not have in CI, as the
pages quote them: each script writes ``benchmarks/measured/<name>.json`` with the date and the
machine of the measurement; :func:`load` reads one, :func:`flickr_note` words the crawl and
statistics ones for ``notebooks/02_flickr_face.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["folder", "load", "flickr_note"]


def folder() -> Path:
    """``benchmarks/measured`` of this checkout (found from any working directory)."""
    from facelib import book

    return book.repo_path("benchmarks", "measured")


def load(name: str, where: Path | None = None) -> dict[str, Any]:
    """The measurement ``<name>.json``.

    Raises:
        FileNotFoundError: not measured yet (names the script that writes it).
    """
    path = (where or folder()) / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not measured yet; run benchmarks/{name}.py")
    return json.loads(path.read_text())


def flickr_note(where: Path | None = None) -> str:
    """Markdown bullets: crawl throughput and memory, histogram and explorer speed on 1.79M boxes."""
    c = load("bench_flickr_crawl", where)
    h = load("bench_stats_histogram", where)
    rss = list(c["peak_rss_mb"].items())
    lines = [
        f"- **Crawl throughput** (`bench_flickr_crawl.py`, {c['machine']}, {c['date']}; local server "
        f"with {c['latency_s'] * 1000:.0f} ms per photo request): {c['concurrent_photos_per_s']} photos/s "
        f"with {c['concurrency']} concurrent downloads vs {c['sequential_photos_per_s']} photos/s "
        f"sequentially, **{c['speedup']}x** (goal: at least {c['goal']:g}x).",
        f"- **Memory** of a crawl process: {rss[0][1]} MB peak for {rss[0][0]} photos, {rss[1][1]} MB for "
        f"{rss[1][0]} photos, of which {c['imports_rss_mb']} MB are the imported libraries (bodies are "
        "streamed to disk, never held).",
        f"- **Histogram** of {h['rows']:,} face boxes from a parquet manifest (`bench_stats_histogram.py`, "
        f"{h['machine']}, {h['date']}): **{h['seconds']} s** (goal < {h['goal_seconds']:g} s), "
        f"{h['speedup']}x faster than reading the whole manifest with pandas and binning with `pd.cut` "
        f"({h['baseline_seconds']} s).",
    ]
    if "explorer_seconds" in h:
        lines.append(
            f"- **Explorer** of the same boxes (`facelib stats --html`): its counts take "
            f"{h['explorer_seconds']} s and the page, plotly.js included, is {h['explorer_html_mb']} MB.")
    return "\n".join(lines)
