"""``facelib flickr``: ``crawl``, ``build`` and ``serve`` (the loopback stand-in).

The API key is read from ``FLICKR_API_KEY`` only; there is deliberately no option for it (a
command line ends up in shell histories and process lists).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from facelib import recipes

__all__ = ["add_cli"]


def _csv_ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated licence ids, got {text!r}") from None


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    from facelib.flickr.api import LICENSES

    r = recipes.flickr()
    p = subparsers.add_parser("flickr", help="crawl Flickr-Face and build the dataset (supplement 3)")
    sub = p.add_subparsers(dest="flickr_command", metavar="SUBCOMMAND", required=True)

    c = sub.add_parser(
        "crawl", help="search tags on Flickr and download the photos (resumable)",
        description="Search flickr.photos.search for each tag (the 100 of supplement 3 by default) "
        "and download every photo once into OUT. The API key is read from the FLICKR_API_KEY "
        "environment variable. Rerun the same command to resume: it also tries again the photos that "
        "failed for a transient reason (up to max_download_runs runs per photo) and records photos "
        "already in place. Exit status 1: photos are left to download or to try again. Licence ids: "
        + "; ".join(f"{k} {v}" for k, v in LICENSES.items()),
    )
    c.add_argument("out", type=Path, help="crawl folder")
    c.add_argument("--tags", nargs="+", default=None,
                   help="tags to search (default: the 100 of supplement 3); quote 'group photo'")
    c.add_argument("--licenses", type=_csv_ints, default=None,
                   help=f"comma-separated licence ids (default {','.join(map(str, r.licenses))}; "
                   f"the authors used {','.join(map(str, r.authors_licenses))})")
    c.add_argument("--max-photos", type=int, default=None, help="stop once the folder holds N photos")
    c.add_argument("--max-per-tag", type=int, default=None, help="take at most N photos per tag")
    c.add_argument("--profile", default="paper", choices=recipes.PROFILES,
                   help="crawl settings (recipes.flickr); demo: short waits for the local server")
    c.add_argument("--concurrency", type=int, default=None, help=f"parallel downloads (default {r.concurrency})")
    c.add_argument("--per-page", type=int, default=None, help=f"results per API page (default {r.per_page})")
    c.add_argument("--result-cap", type=int, default=None,
                   help=f"results one query can reach; windows are split below it (default {r.result_cap})")
    c.add_argument("--api-url", default=None,
                   help="REST endpoint (default Flickr's; a 'facelib flickr serve' URL for the demo)")
    c.add_argument("--retry-failed", action="store_true",
                   help="download again every photo that failed before, final failures (404, 410, ...) included")
    c.add_argument("--search-only", action="store_true", help="search, do not download")
    c.add_argument("--no-progress", action="store_true")
    c.set_defaults(func=_crawl)

    b = sub.add_parser(
        "build", help="detect and crop the faces of a crawl into Flickr-Face shards",
        description="Run the preprocessing (RetinaFace, 190/256 crops, HDF5 shards) on the photos "
        "a crawl downloaded and write OUT/flickr_face.parquet: one row per face with its photo's id, "
        "owner, licence and tags. Rerun to resume or to add newly downloaded photos.",
    )
    b.add_argument("crawl_dir", type=Path)
    b.add_argument("out", type=Path)
    b.add_argument("--profile", default="paper", choices=recipes.PROFILES)
    b.add_argument("--workers", type=int, default=1)
    b.add_argument("--shard-size", type=int, default=1000)
    b.add_argument("--min-face", type=int, default=None)
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(func=_build)

    s = sub.add_parser(
        "serve", help="run the loopback stand-in for Flickr (demo data, 127.0.0.1 only)",
        description="Serve a synthetic catalogue through a local flickr.photos.search and photo "
        "server (facelib.flickr.local_server). It stops by itself after --lifetime seconds.",
    )
    s.add_argument("--photos", type=int, default=200)
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--lifetime", type=float, default=600.0, help="seconds before it stops (default 600)")
    s.add_argument("--latency", type=float, default=0.0, help="seconds added to each photo response")
    s.add_argument("--fault-rate", type=float, default=0.0,
                   help="probability that a photo request meets a fault (5xx, 429, HTML, wrong type, truncated, "
                        "corrupt JPEG, slow, hanging, reset)")
    s.add_argument("--gone-rate", type=float, default=0.0, help="fraction of the photos that answer 404/410")
    s.add_argument("--api-fault-rate", type=float, default=0.0, help="probability that an API call answers 429/5xx")
    s.add_argument("--fault-seed", type=int, default=0, help="seed of the drawn faults")
    s.set_defaults(func=_serve)


def _crawl(args: argparse.Namespace) -> int:
    from facelib.flickr.api import API_URL, FlickrAPIError, FlickrClient, MissingAPIKey
    from facelib.flickr.crawl import crawl
    from facelib.flickr.tags import TAGS

    over = {k: v for k, v in (("concurrency", args.concurrency), ("per_page", args.per_page),
                              ("result_cap", args.result_cap)) if v is not None}
    try:
        recipe = recipes.flickr(args.profile, **over)
        client = FlickrClient.from_env(recipe, api_url=args.api_url or API_URL)
        summary = crawl(args.out, client, tags=args.tags or TAGS, licenses=args.licenses,
                        max_photos=args.max_photos, max_per_tag=args.max_per_tag,
                        retry_failed=args.retry_failed, download=not args.search_only,
                        progress=not args.no_progress)
    except (MissingAPIKey, FlickrAPIError, ValueError, RuntimeError, recipes.RecipeError) as e:
        print(f"facelib flickr crawl: error: {e}", file=sys.stderr)
        return 2
    print(summary)
    return 1 if (summary.total_pending or summary.total_retryable) and not args.search_only else 0


def _build(args: argparse.Namespace) -> int:
    from facelib.flickr.build import build_dataset

    try:
        summary = build_dataset(args.crawl_dir, args.out, profile=args.profile, workers=args.workers,
                                shard_size=args.shard_size, min_face=args.min_face,
                                progress=not args.no_progress)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"facelib flickr build: error: {e}", file=sys.stderr)
        return 2
    print(summary)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from facelib.flickr.local_server import Faults, LocalFlickr, make_catalog

    try:
        faults = Faults(latency_s=args.latency, rate=args.fault_rate, gone_rate=args.gone_rate,
                        api_rate=args.api_fault_rate, seed=args.fault_seed, hang_s=60.0)
    except ValueError as e:
        print(f"facelib flickr serve: error: {e}", file=sys.stderr)
        return 2
    server = LocalFlickr(make_catalog(args.photos), faults=faults, lifetime_s=args.lifetime).start(args.port)
    print(f"demo Flickr at {server.api_url} (API key: {server.api_key}; stops in {args.lifetime:g} s)\n"
          f"  FLICKR_API_KEY={server.api_key} facelib flickr crawl OUT --profile demo "
          f"--api-url {server.api_url} --tags people portrait", flush=True)
    try:
        while server.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0
