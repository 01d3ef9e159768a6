"""Helpers for the Flickr tests: a small catalogue, the loopback server, a demo-speed client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from facelib import recipes
from facelib.flickr import api, local_server

REPO = Path(__file__).resolve().parents[1]
TAGS4 = ["people", "portrait", "group photo", "smile"]
REUSE = (4, 9, 10, 11)


def catalog(n: int = 60, seed: int = 0) -> list[local_server.Photo]:
    return local_server.make_catalog(n, tags=TAGS4, seed=seed)


def reusable(photos) -> list[local_server.Photo]:
    """Photos a default crawl keeps (licences 4, 9, 10, 11), in catalogue order."""
    return [p for p in photos if p.license in REUSE]


def fast_recipe(**over) -> recipes.Flickr:
    base = dict(per_page=10, result_cap=30, timeout_s=2.0, concurrency=4, backoff_s=0.02,
                backoff_max_s=0.2, max_tries=4)
    base.update(over)
    return recipes.flickr("demo", **base)


def client(server: local_server.LocalFlickr, **over) -> api.FlickrClient:
    return api.FlickrClient(server.api_key, fast_recipe(**over), api_url=server.api_url)


def cli_crawl(out: Path, server: local_server.LocalFlickr, key: str, *extra: str, tags=TAGS4,
              timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``facelib flickr crawl`` in a child process against ``server`` (``env``: added variables)."""
    env = dict(os.environ, FLICKR_API_KEY=key, PYTHONPATH=str(REPO), **(env or {}))
    cmd = [sys.executable, "-m", "facelib.cli", "flickr", "crawl", str(out), "--profile", "demo",
           "--api-url", server.api_url, "--per-page", "10", "--result-cap", "30", "--concurrency", "4",
           "--no-progress", "--tags", *tags, *extra]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def popen_crawl(out: Path, server: local_server.LocalFlickr, key: str, tags=TAGS4,
                env: dict[str, str] | None = None) -> subprocess.Popen:
    env = dict(os.environ, FLICKR_API_KEY=key, PYTHONPATH=str(REPO), **(env or {}))
    cmd = [sys.executable, "-m", "facelib.cli", "flickr", "crawl", str(out), "--profile", "demo",
           "--api-url", server.api_url, "--per-page", "10", "--result-cap", "30", "--concurrency", "4",
           "--no-progress", "--tags", *tags]
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
