"""A crawl under faults and SIGKILLs: photos reachable, stored, lost, duplicated, and disagreements.

The loopback server (:mod:`facelib.flickr.local_server`) serves a catalogue of ``--photos``
photos; every photo request meets a fault with probability ``--rate`` (drawn from every
transient kind: 500, 503, 429, an HTML page, a wrong content type, a truncated body, a corrupt
JPEG, a slow and a hanging response, a connection reset), ``--gone-rate`` of the photos are gone
(404/410) and API calls fail at ``--api-rate``. The real command, ``facelib flickr crawl`` in a
child process (demo profile: 5 s timeouts, 16 workers), is killed with SIGKILL ``--kills`` times
at random moments, then rerun until it exits 0 (at most ``--max-runs`` runs). A moment is a
point of the crawl's progress drawn uniformly (photos found by the search plus photos whose
download finished, read from its database every 10 ms), so that kills land in the search and in
the downloads whatever the machine's speed. Printed:

* reachable: photos a default crawl keeps (reusable licences) that the server does not answer
  with 404/410 for good;
* stored: reachable photos whose file is in place, decodes, and has the server's bytes;
* lost: reachable photos not stored (goal 0);
* duplicates: photos stored twice (two rows, two files) (goal 0);
* disagreements between the table and the folder: a done row whose file is missing or differs,
  a file without a done row, a temporary file left, a ``photos.parquet`` row that differs from
  the database (goal 0).

Usage: ``python benchmarks/bench_flickr_faults.py [--photos 600] [--rate 0.15] [--kills 3]
[--seed 0]``.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from facelib import images
from facelib.flickr import crawl, local_server
from facelib.flickr.tags import TAGS

REUSABLE = (4, 9, 10, 11)  # the licences a default crawl keeps (recipes.Flickr.licenses)


def _command(out: Path, server: local_server.LocalFlickr, tags: list[str]) -> list[str]:
    return [sys.executable, "-m", "facelib", "flickr", "crawl", str(out), "--profile", "demo",
            "--api-url", server.api_url, "--no-progress", "--tags", *tags]


def _progress(out: Path) -> tuple[int, int, int]:
    """(photos found, photos finished, tags left) of a crawl folder; zeros before it exists."""
    path = out / crawl.STATE
    if not path.exists():
        return 0, 0, -1
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2) as db:
            return (db.execute("SELECT COUNT(*) FROM photos").fetchone()[0],
                    db.execute("SELECT COUNT(*) FROM photos WHERE status != 'pending'").fetchone()[0],
                    db.execute("SELECT COUNT(*) FROM tags WHERE done = 0").fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0, 0, -1


def _phase(out: Path) -> str:
    """Where a killed crawl was: searching, downloading (photos recorded so far), or not started."""
    n, finished, tags_left = _progress(out)
    if tags_left < 0:
        return "before the database existed"
    return (f"searching ({n} photos found)" if tags_left or not finished
            else f"downloading ({finished} of {n} photos finished)")


def _measure(out: Path, server: local_server.LocalFlickr, photos: list[local_server.Photo]) -> dict:
    faults = server.faults
    reachable = {p.id for p in photos if p.license in REUSABLE and not faults.gone(p.id)}
    df = crawl.photos_table(out)
    done = df[df.status == "done"]
    files = [p for p in (out / crawl.IMAGES).rglob("*") if p.is_file()]
    visible = [p for p in files if not p.name.startswith(".")]
    per_id = collections.Counter(p.name.split(".")[0] for p in visible)
    stored = set()
    for row in done.itertuples():
        path = out / row.file
        if row.photo_id in reachable and path.is_file():
            data = path.read_bytes()
            try:
                images.load_image(data)
            except images.ImageDecodeError:
                continue
            if data == server.photo_bytes(row.photo_id):
                stored.add(row.photo_id)
    disagree = 0
    for row in done.itertuples():
        path = out / row.file
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != row.sha256:
            disagree += 1
    recorded = set(done.file)
    disagree += sum(p.relative_to(out).as_posix() not in recorded for p in visible)
    disagree += len(files) - len(visible) + len([p for p in out.glob(f".{crawl.PHOTOS}.*")])
    saved = pd.read_parquet(out / crawl.PHOTOS) if (out / crawl.PHOTOS).exists() else df.iloc[:0]
    merged = saved.merge(df, on="photo_id", how="outer", suffixes=("_parquet", "_db"), indicator=True)
    disagree += int((merged["_merge"] != "both").sum())
    both = merged[merged["_merge"] == "both"]
    disagree += int(((both.status_parquet != both.status_db) | (both.file_parquet != both.file_db)).sum())
    return {"reachable": len(reachable), "stored": len(stored), "lost": len(reachable - stored),
            "duplicates": int(df.photo_id.duplicated().sum()) + sum(n - 1 for n in per_id.values() if n > 1),
            "disagreements": disagree, "failed": int((df.status == "failed").sum()),
            "gone": len({p.id for p in photos if p.license in REUSABLE} - reachable)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=600, help="catalogue size (about half have reusable licences)")
    ap.add_argument("--rate", type=float, default=0.15, help="probability of a fault per photo request")
    ap.add_argument("--gone-rate", type=float, default=0.02, help="fraction of photos gone (404/410)")
    ap.add_argument("--api-rate", type=float, default=0.05, help="probability of a fault per API call")
    ap.add_argument("--kills", type=int, default=3, help="SIGKILLs at random moments")
    ap.add_argument("--max-runs", type=int, default=8, help="runs after the kills, at most")
    ap.add_argument("--latency", type=float, default=0.05, help="seconds per photo request")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tags = list(TAGS[:8])
    photos = local_server.make_catalog(args.photos, tags=tags, seed=args.seed)
    faults = local_server.Faults(rate=args.rate, gone_rate=args.gone_rate, api_rate=args.api_rate,
                                 seed=args.seed, latency_s=args.latency, slow_s=1.0, hang_s=8.0,
                                 retry_after_s=0.2, duplicate_pages=True, evil_ids=True)
    env = dict(os.environ, FLICKR_API_KEY="bench-key", OMP_NUM_THREADS="1")
    kills, runs, t0 = [], [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, \
            local_server.LocalFlickr(photos, api_key="bench-key", faults=faults, result_cap=100,
                                     lifetime_s=7200) as server:
        server.prerender()
        out = Path(tmp) / "crawl"
        total = 2 * sum(p.license in REUSABLE for p in photos)  # found + finished, at the end
        for target in sorted(rng.randint(1, total - 1) for _ in range(args.kills)):
            proc = subprocess.Popen(_command(out, server, tags), env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 600
            while proc.poll() is None and time.monotonic() < deadline:
                found, finished, _ = _progress(out)
                if found + finished >= target:
                    break
                time.sleep(0.01)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                kills.append(f"at progress {target}/{total}: {_phase(out)}")
            else:
                kills.append(f"at progress {target}/{total}: the run had ended (exit {proc.returncode})")
        for _ in range(args.max_runs):
            done = subprocess.run(_command(out, server, tags), env=env, capture_output=True, text=True)
            runs.append(done.returncode)
            if done.returncode == 0:
                break
        figures = _measure(out, server, photos)
        served = dict(server.served)
    seconds = time.perf_counter() - t0
    faulty = sum(v for k, v in served.items() if k)
    print(f"crawl of {args.photos} catalogue photos, {args.rate:.0%} of photo requests faulty "
          f"({faulty} of {sum(served.values())} requests: "
          + ", ".join(f"{k} {v}" for k, v in sorted(served.items()) if k) + f"), {args.gone_rate:.0%} gone, "
          f"{args.api_rate:.0%} of API calls faulty")
    for i, k in enumerate(kills, 1):
        print(f"  SIGKILL {i} {k}")
    print(f"  then {len(runs)} run(s) to completion, exit statuses {runs} ({seconds:.0f} s in all)")
    print(f"photos reachable: {figures['reachable']}  (gone: {figures['gone']}, answered 404/410)")
    print(f"photos stored:    {figures['stored']}")
    print(f"photos lost:      {figures['lost']}  (goal 0)")
    print(f"duplicates:       {figures['duplicates']}  (goal 0)")
    print(f"disagreements table vs folder: {figures['disagreements']}  (goal 0)")


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t:.0f} s)")
