"""Crawl throughput: 16 concurrent downloads vs a sequential client (goal: >= 8x), and memory.

Both crawls run in this process against the loopback server (:mod:`facelib.flickr.local_server`)
with a simulated network round trip per photo (``--latency``, default 50 ms: a photo from a
CDN). Photos are rendered before timing, so the server's drawing does not count. Printed:

* photos/s of the download phase with ``recipe.concurrency`` workers and with 1 worker, and their
  ratio (goal >= 8 with 16 workers);
* peak resident memory of a child process crawling ``--n`` photos and ``4 * --n`` photos (the
  server stays in this process): flat when bodies are streamed to disk, never held.

Results are also written to ``benchmarks/measured/bench_flickr_crawl.json`` (read by
``notebooks/02_flickr_face.py``). Usage: ``python benchmarks/bench_flickr_crawl.py [--n 240]``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from facelib import recipes
from facelib.flickr import api, crawl, local_server

GOAL = 8.0
ALL_LICENSES = list(api.LICENSES)
HERE = Path(__file__).resolve().parent


def _client(server: local_server.LocalFlickr, concurrency: int) -> api.FlickrClient:
    recipe = recipes.flickr("demo", concurrency=concurrency, timeout_s=30.0)
    return api.FlickrClient(server.api_key, recipe, api_url=server.api_url)


def _rate(server: local_server.LocalFlickr, concurrency: int, n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        s = crawl.crawl(tmp, _client(server, concurrency), tags=["people"], licenses=ALL_LICENSES,
                        max_photos=n, progress=False)
    assert s.downloaded == n, s
    return s.downloaded / s.download_seconds


def _child(api_url: str, n: int) -> None:
    """Crawl ``n`` photos in a fresh process and print its peak RSS (MB) as JSON."""
    client = api.FlickrClient("bench-key", recipes.flickr("demo", timeout_s=30.0), api_url=api_url)
    import facelib.storage  # noqa: F401  (imported by the crawl's end: count it in the baseline)

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as tmp:
        s = crawl.crawl(tmp, client, tags=["people"], licenses=ALL_LICENSES, max_photos=n, progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"photos": s.downloaded, "peak_rss_mb": peak, "imports_rss_mb": before}))


def _peak_rss(api_url: str, n: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", api_url, "--n", str(n)],
                         capture_output=True, text=True, check=True)
    return json.loads(next(line for line in out.stdout.splitlines() if line.startswith("{")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=240, help="photos of the concurrent run")
    ap.add_argument("--n-seq", type=int, default=48, help="photos of the sequential run")
    ap.add_argument("--latency", type=float, default=0.05, help="seconds per photo request")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.n)
        return
    big = 4 * args.n
    photos = local_server.make_catalog(big + 10, tags=["people"], seed=1)
    faults = local_server.Faults(latency_s=args.latency)
    concurrency = recipes.flickr().concurrency
    with local_server.LocalFlickr(photos, api_key="bench-key", faults=faults, lifetime_s=3600) as server:
        server.prerender()
        seq = _rate(server, 1, args.n_seq)
        par = _rate(server, concurrency, args.n)
        small, large = _peak_rss(server.api_url, args.n), _peak_rss(server.api_url, big)
    ratio = par / seq
    print(f"download phase, {args.latency * 1000:.0f} ms per photo request (loopback server):")
    print(f"  sequential (1 worker):          {seq:7.1f} photos/s ({args.n_seq} photos)")
    print(f"  concurrent ({concurrency} workers):        {par:7.1f} photos/s ({args.n} photos)")
    print(f"  speed-up: {ratio:.1f}x (goal >= {GOAL:g}x: {'met' if ratio >= GOAL else 'NOT met'})")
    print(f"peak RSS of a crawl process: {small['peak_rss_mb']:.0f} MB for {small['photos']} photos, "
          f"{large['peak_rss_mb']:.0f} MB for {large['photos']} photos "
          f"(ratio {large['peak_rss_mb'] / small['peak_rss_mb']:.2f}; flat = 1.0); "
          f"{small['imports_rss_mb']:.0f} MB of it is the imported libraries")
    if not args.no_save:
        res = {
            "benchmark": "bench_flickr_crawl", "date": _dt.date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "latency_s": args.latency,
            "sequential_photos_per_s": round(seq, 1), "concurrent_photos_per_s": round(par, 1),
            "concurrency": concurrency, "speedup": round(ratio, 1), "goal": GOAL,
            "peak_rss_mb": {str(small["photos"]): round(small["peak_rss_mb"]), str(large["photos"]): round(large["peak_rss_mb"])},
            "imports_rss_mb": round(small["imports_rss_mb"]),
        }
        dst = HERE / "measured" / "bench_flickr_crawl.json"
        dst.parent.mkdir(exist_ok=True)
        dst.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t:.0f} s)")
