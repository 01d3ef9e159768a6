"""The Flickr-Face crawl: search the 100 tags, then download every photo once, resumably.

Supplement 3: Flickr-Face was built from photos having one of 100 tags. The authors' scraper
had no de-duplication and no resume; this one keeps its state in ``OUT/crawl.sqlite`` (SQLite
in WAL mode, written by the main thread only):

* ``windows``: for each tag, the upload-date windows (:func:`facelib.flickr.api.plan_windows`)
  and the next page to fetch; a page's photos and the page's completion commit together;
* ``photos``: each photo once (the id is the key), with owner, licence, Flickr tags, upload date,
  the image URL, and the download's status (``pending``, ``done``, ``failed``), tries, the
  number of runs that tried it (``runs``), whether its failure was transient (``retryable``),
  reason, file, size and SHA-256;
* ``photo_tags``: every query tag that found each photo (de-duplication across tags);
* ``invalid``: search records that were refused (a photo id such as ``../x``, no URL, a licence
  not asked for), with the reason;
* ``meta``: the settings the folder was started with; a rerun must use the same.

Downloads run on a thread pool (``recipe.concurrency``) under a global rate limit, with the
retry rules of :mod:`facelib.flickr.transport`. Every body is checked (status, content type,
magic bytes, size cap, and a full decode with :func:`facelib.images.load_image`) before it is
renamed from ``images/NN/.ID.PID.TID.part`` to ``images/NN/ID.jpg``: the file name comes from
the photo id, which must be a decimal number, never from anything else the server sends. A body
that is not the photo (a wrong content type, an HTML page, bytes that do not decode) is retried
like a 5xx, within the run's ``max_tries``.

What is final and what is not: a 404 or 410, a redirect off the photo hosts, a refused id, or a
body that stayed invalid through every try of a run is final (``status = 'failed'``,
``retryable = 0``; ``--retry-failed`` tries again). A photo that failed for a transient reason
(5xx, 429, timeouts, resets, truncated bodies) is ``failed`` with ``retryable = 1`` and is
tried again by the next run of the same command, until ``recipe.max_download_runs`` runs have
tried it, so that rerunning converges.

The folder and the database agree after any kill: at start every temporary file the crawler
writes (``images/*/.*.part``, ``.photos.parquet.*.tmp``) is removed, a photo marked done whose
file is missing or has another size is downloaded again, and a file in place for a photo not
marked done (killed between the rename and the database update) is verified (size, magic bytes,
full decode) and recorded as done without a download, or removed. Killing the process at any
moment (even ``kill -9``) and rerunning the same command loses only the downloads in flight: no
photo twice, no truncated file, no photo lost.

Fault injection for the kill tests: with ``FACELIB_CRAWL_KILL_AT=POINT:N`` in the environment
the process sends itself SIGKILL the N-th time it reaches ``POINT``: ``search`` (a result page
committed), ``rename`` (a photo renamed into place, its database update not yet made),
``download`` (a download's result recorded) or ``parquet`` (``photos.parquet`` written to its
temporary name, not yet renamed). Unset, nothing happens.

Command line: ``facelib flickr crawl OUT --tags ... --licenses ... --max-photos N`` (the key
comes from ``FLICKR_API_KEY``). Shown in ``notebooks/02_flickr_face.py``.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import os
import random
import re
import signal
import sqlite3
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit

import pandas as pd

from facelib import images, recipes, storage
from facelib.flickr.api import API_URL, LICENSES, FlickrClient, plan_windows, to_unix, valid_photo_id
from facelib.flickr.tags import TAGS, check_tags
from facelib.flickr.transport import (
    GaveUp,
    InvalidBody,
    PermanentError,
    RateLimiter,
    RetryPolicy,
    TransientError,
    download_to,
    host_allowed,
    image_kind,
    with_retries,
)

__all__ = ["STATE", "IMAGES", "PHOTOS", "CrawlSummary", "CrawlState", "crawl", "photos_table",
           "windows_table", "refused_table", "photo_path", "FLICKR_PHOTO_HOSTS"]

STATE, IMAGES, PHOTOS, LOCK = "crawl.sqlite", "images", "photos.parquet", ".crawl.lock"
FLICKR_PHOTO_HOSTS = ("staticflickr.com", "flickr.com")
PART = ".part"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tags(tag TEXT PRIMARY KEY, planned INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS windows(tag TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
    total INTEGER NOT NULL, next_page INTEGER NOT NULL DEFAULT 1, done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(tag, start));
CREATE TABLE IF NOT EXISTS photos(id TEXT PRIMARY KEY, seq INTEGER NOT NULL, owner TEXT,
    ownername TEXT, license INTEGER, flickr_tags TEXT, date_upload INTEGER, url TEXT, title TEXT,
    status TEXT NOT NULL DEFAULT 'pending', tries INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '', file TEXT NOT NULL DEFAULT '',
    bytes INTEGER NOT NULL DEFAULT 0, sha256 TEXT NOT NULL DEFAULT '',
    runs INTEGER NOT NULL DEFAULT 0, retryable INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS photos_status ON photos(status, seq);
CREATE TABLE IF NOT EXISTS photo_tags(photo_id TEXT NOT NULL, tag TEXT NOT NULL,
    PRIMARY KEY(photo_id, tag));
CREATE TABLE IF NOT EXISTS invalid(tag TEXT NOT NULL, raw_id TEXT NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY(tag, raw_id));
"""


def photo_path(photo_id: str, suffix: str = ".jpg") -> str:
    """Where a photo is stored, relative to ``OUT``: ``images/<last 2 digits>/<id><suffix>``.

    Raises:
        ValueError: the id is not a decimal number (it never becomes a path).
    """
    if not valid_photo_id(photo_id):
        raise ValueError(f"refusing photo id {photo_id!r}: not a decimal number")
    return f"{IMAGES}/{photo_id[-2:].zfill(2)}/{photo_id}{suffix}"


class CrawlState:
    """The SQLite state of one crawl folder (main thread only)."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        have = {row[1] for row in self.db.execute("PRAGMA table_info(photos)")}
        for column in ("runs", "retryable"):  # folders started by an earlier version
            if column not in have:
                self.db.execute(f"ALTER TABLE photos ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        row = self.db.execute(sql, args).fetchone()
        return row[0] if row else None

    def check_meta(self, config: dict[str, Any]) -> None:
        """Store ``config`` on the first run; later runs must match it."""
        old = {k: json.loads(v) for k, v in self.db.execute("SELECT key, value FROM meta")}
        if not old:
            with self.tx() as db:
                db.executemany("INSERT INTO meta VALUES (?, ?)",
                               [(k, json.dumps(v)) for k, v in config.items()])
            return
        diff = {k: (old.get(k), v) for k, v in config.items() if k in old and old[k] != v}
        if diff:
            raise ValueError(f"this crawl folder was started with other settings; use a new folder "
                             f"or the same settings. Differences (folder, now): {diff}")

    def meta(self, key: str) -> Any:
        v = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(v) if v is not None else None

    def close(self) -> None:
        self.db.close()


@dataclass
class CrawlSummary:
    """What a crawl run did, and where the folder stands."""

    api_calls: int = 0
    new_photos: int = 0
    invalid_records: int = 0
    downloaded: int = 0
    failed: int = 0
    retries: int = 0
    bytes: int = 0
    seconds: float = 0.0
    search_seconds: float = 0.0
    download_seconds: float = 0.0
    total_photos: int = 0
    total_done: int = 0
    total_failed: int = 0
    total_pending: int = 0
    total_retryable: int = 0
    requeued: int = 0
    recovered: int = 0
    redownload: int = 0
    removed_temp: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    retry_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def photos_per_s(self) -> float:
        return self.downloaded / self.download_seconds if self.download_seconds > 0 else 0.0

    def __str__(self) -> str:
        why = ", ".join(f"{k}: {v}" for k, v in sorted(self.reasons.items())) or "none"
        fixed = (f"start: {self.removed_temp} temporary files removed, {self.recovered} photos found in "
                 f"place and recorded, {self.redownload} to download again, {self.requeued} failed "
                 "transiently before and tried again\n")
        return (
            fixed +
            f"search: {self.api_calls} API calls, {self.new_photos} new photos, "
            f"{self.invalid_records} records refused ({self.search_seconds:.1f} s)\n"
            f"download: {self.downloaded} photos ({self.bytes / 1e6:.1f} MB, "
            f"{self.photos_per_s:.1f} photos/s), {self.failed} failed ({why}), "
            f"{self.retries} retries ({self.download_seconds:.1f} s)\n"
            f"folder: {self.total_photos} photos: {self.total_done} downloaded, "
            f"{self.total_failed} failed ({self.total_retryable} of them transiently: the next run "
            f"tries them again), {self.total_pending} pending"
        )


KILL_ENV = "FACELIB_CRAWL_KILL_AT"
_kill_counts: collections.Counter[str] = collections.Counter()
_kill_lock = threading.Lock()


def _kill_point(name: str) -> None:
    """SIGKILL this process the N-th time ``name`` is reached, if ``FACELIB_CRAWL_KILL_AT=name:N``."""
    spec = os.environ.get(KILL_ENV)
    if not spec or not spec.startswith(name + ":"):
        return
    with _kill_lock:
        _kill_counts[name] += 1
        if _kill_counts[name] == int(spec.split(":", 1)[1]):
            os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    """One crawl per folder (an OS lock: released by the kernel even after kill -9)."""
    fd = os.open(out / LOCK, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"{out} is being crawled by another process") from None
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# Search phase
# --------------------------------------------------------------------------------------------
def _search(state: CrawlState, client: FlickrClient, tags: Sequence[str], licenses: Sequence[int],
            max_photos: int | None, max_per_tag: int | None, summary: CrawlSummary,
            progress: bool) -> None:
    recipe = client.recipe
    calls0 = client.calls
    lo, hi = state.meta("min_upload_date"), state.meta("max_upload_date")
    lic_ok = set(licenses)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tags), desc="search", unit="tag", dynamic_ncols=True)
    try:
        for tag in tags:
            if max_photos is not None and state.one("SELECT COUNT(*) FROM photos") >= max_photos:
                break
            state.db.execute("INSERT OR IGNORE INTO tags(tag) VALUES (?)", (tag,))
            if state.one("SELECT done FROM tags WHERE tag = ?", (tag,)):
                if bar is not None:
                    bar.update(1)
                continue
            if not state.one("SELECT planned FROM tags WHERE tag = ?", (tag,)):
                count = lambda a, b: client.search(tag, licenses, a, b, page=1, per_page=1).total  # noqa: E731
                windows = list(plan_windows(count, lo, hi, recipe.result_cap))
                with state.tx() as db:
                    db.execute("DELETE FROM windows WHERE tag = ?", (tag,))
                    db.executemany("INSERT INTO windows(tag, start, end, total) VALUES (?, ?, ?, ?)",
                                   [(tag, a, b, n) for a, b, n in windows])
                    db.execute("UPDATE windows SET done = 1 WHERE tag = ? AND total = 0", (tag,))
                    db.execute("UPDATE tags SET planned = 1 WHERE tag = ?", (tag,))
            stop_all = False
            tag_full = False
            for start, end, total, next_page in state.db.execute(
                "SELECT start, end, total, next_page FROM windows WHERE tag = ? AND done = 0 "
                "ORDER BY start", (tag,)).fetchall():
                reachable = min(total, recipe.result_cap)
                page = next_page
                while True:
                    res = client.search(tag, licenses, start, end, page=page)
                    n_photos = state.one("SELECT COUNT(*) FROM photos")
                    n_tag = state.one("SELECT COUNT(*) FROM photo_tags WHERE tag = ?", (tag,))
                    with state.tx() as db:
                        for raw, why in res.invalid:
                            db.execute("INSERT OR IGNORE INTO invalid VALUES (?, ?, ?)", (tag, raw, why))
                            summary.invalid_records += 1
                        for p in res.photos:
                            if lic_ok and p.license not in lic_ok:
                                db.execute("INSERT OR IGNORE INTO invalid VALUES (?, ?, ?)",
                                           (tag, repr(p.id), f"licence {p.license} not requested"))
                                summary.invalid_records += 1
                                continue
                            if max_per_tag is not None and n_tag >= max_per_tag:
                                tag_full = True
                                break
                            known = db.execute("SELECT 1 FROM photos WHERE id = ?", (p.id,)).fetchone()
                            if not known:
                                if max_photos is not None and n_photos >= max_photos:
                                    stop_all = True
                                    break
                                db.execute(
                                    "INSERT INTO photos(id, seq, owner, ownername, license, flickr_tags, "
                                    "date_upload, url, title) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                    (p.id, n_photos, p.owner, p.ownername, p.license, p.tags,
                                     p.date_upload, p.url, p.title))
                                n_photos += 1
                                summary.new_photos += 1
                            cur = db.execute("INSERT OR IGNORE INTO photo_tags VALUES (?, ?)", (p.id, tag))
                            n_tag += cur.rowcount
                        if stop_all or tag_full:
                            pass  # the page is not complete: a rerun with a larger cap redoes it
                        else:
                            last = page * res.per_page >= reachable or page >= res.pages or not res.photos
                            db.execute("UPDATE windows SET next_page = ?, done = ? WHERE tag = ? AND start = ?",
                                       (page + 1, int(last), tag, start))
                    _kill_point("search")
                    if stop_all or tag_full or page * res.per_page >= reachable or page >= res.pages \
                            or not res.photos:
                        break
                    page += 1
                if stop_all or tag_full:
                    break
            if tag_full or not stop_all:
                state.db.execute("UPDATE tags SET done = 1 WHERE tag = ?", (tag,))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(photos=state.one("SELECT COUNT(*) FROM photos"), refresh=False)
            if stop_all:
                break
    finally:
        if bar is not None:
            bar.close()
    summary.api_calls = client.calls - calls0


# --------------------------------------------------------------------------------------------
# Download phase
# --------------------------------------------------------------------------------------------
@dataclass
class _Result:
    id: str
    ok: bool
    tries: int
    reason: str = ""
    file: str = ""
    bytes: int = 0
    sha256: str = ""
    retryable: bool = False


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _Downloader:
    """Fetch, check and store one photo; run on worker threads (no database access)."""

    def __init__(self, out: Path, recipe: recipes.Flickr, hosts: Sequence[str], max_pixels: int,
                 seed: int | None) -> None:
        self.out = out
        self.recipe = recipe
        self.hosts = hosts
        self.max_pixels = max_pixels
        self.policy = RetryPolicy(recipe.max_tries, recipe.backoff_s, recipe.backoff_max_s)
        self.limiter = RateLimiter(recipe.download_rate)
        self._rng_lock = threading.Lock()
        self._rng = random.Random(seed)
        self.retries = 0
        self.retry_reasons: collections.Counter[str] = collections.Counter()

    def _retry(self, attempt: int, err: TransientError, delay: float) -> None:
        with self._rng_lock:
            self.retries += 1
            self.retry_reasons[_short_reason(err.reason)] += 1

    def fetch(self, photo_id: str, url: str) -> _Result:
        try:
            rel = photo_path(photo_id)
        except ValueError as e:
            return _Result(photo_id, False, 0, str(e))
        if not host_allowed(url, self.hosts):
            return _Result(photo_id, False, 0, f"photo {photo_id}: URL host not allowed "
                           f"({urlsplit(url).hostname!r}; allowed: {', '.join(self.hosts)})")
        folder = (self.out / rel).parent
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{photo_id}.{os.getpid()}.{threading.get_ident()}{PART}"
        what = f"photo {photo_id}"
        with self._rng_lock:
            rng = random.Random(self._rng.random())

        def attempt() -> tuple[str, int]:
            self.limiter.acquire()
            suffix, n = download_to(url, tmp, self.recipe.timeout_s, self.recipe.max_bytes, what, self.hosts)
            try:
                images.load_image(tmp, max_pixels=self.max_pixels)
            except images.ImageDecodeError as e:
                raise InvalidBody(f"{what}: does not decode ({e.reason}: {e.detail})") from None
            return suffix, n

        try:
            (suffix, n), tries = with_retries(attempt, self.policy, rng, on_retry=self._retry)
        except PermanentError as e:
            tmp.unlink(missing_ok=True)
            return _Result(photo_id, False, 1, e.reason)
        except GaveUp as e:
            tmp.unlink(missing_ok=True)
            final = " (invalid every time: final)" if e.invalid_only else ""
            return _Result(photo_id, False, e.tries, f"gave up after {e.tries} tries: {e.reason}{final}",
                           retryable=not e.invalid_only)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        final = rel[: -len(".jpg")] + suffix
        digest = _sha256(tmp)
        os.replace(tmp, self.out / final)
        _kill_point("rename")
        return _Result(photo_id, True, tries, "", final, n, digest)


def _short_reason(reason: str) -> str:
    """Group failure reasons for the summary (drop the photo id)."""
    text = re.sub(r"photo [^:]*: ", "", reason, count=1)
    return text.split(" (")[0][:60]


def _verified(path: Path, max_bytes: int, max_pixels: int) -> tuple[int, str] | None:
    """(size, SHA-256) of a stored photo that passes the download's checks, or None.

    The checks: size within ``(0, max_bytes]``, magic bytes of the format its suffix names, and
    a full decode (:func:`facelib.images.load_image`).
    """
    try:
        size = path.stat().st_size
        if not 0 < size <= max_bytes:
            return None
        with open(path, "rb") as f:
            kind = image_kind(f.read(16))
        if kind is None or {"jpeg": ".jpg"}.get(kind, f".{kind}") != path.suffix:
            return None
        images.load_image(path, max_pixels=max_pixels)
    except (OSError, images.ImageDecodeError):
        return None
    return size, _sha256(path)


def _stored_files(out: Path) -> dict[str, Path]:
    """Photo id -> its file under ``images/`` (names made by :func:`photo_path`)."""
    found: dict[str, Path] = {}
    root = out / IMAGES
    if not root.is_dir():
        return found
    for folder in os.scandir(root):
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder.path):
            stem, dot, _ = entry.name.partition(".")
            if dot and not entry.name.startswith(".") and stem.isdigit() and entry.is_file():
                found[stem] = Path(entry.path)
    return found


def _reconcile(out: Path, state: CrawlState, recipe: recipes.Flickr, summary: CrawlSummary) -> None:
    """Make the database and the folder agree after whatever stopped the last run (see module doc)."""
    for tmp in [*(out / IMAGES).glob("*/.*"), *out.glob(f".{PHOTOS}.*")]:  # every temp name we write
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            summary.removed_temp += 1
    files = _stored_files(out)
    max_pixels = recipes.crop().max_image_pixels
    with state.tx() as db:
        for pid, rel, size in db.execute("SELECT id, file, bytes FROM photos WHERE status = 'done'").fetchall():
            path = files.get(pid)
            if path is None or path.relative_to(out).as_posix() != rel or path.stat().st_size != size:
                db.execute("UPDATE photos SET status = 'pending', file = '', bytes = 0, sha256 = '' WHERE id = ?",
                           (pid,))
                summary.redownload += 1
        for (pid,) in db.execute("SELECT id FROM photos WHERE status != 'done'").fetchall():
            path = files.get(pid)
            if path is None:
                continue
            ok = _verified(path, recipe.max_bytes, max_pixels)
            if ok is None:
                path.unlink(missing_ok=True)
                continue
            db.execute("UPDATE photos SET status = 'done', reason = '', retryable = 0, file = ?, bytes = ?, "
                       "sha256 = ? WHERE id = ?", (path.relative_to(out).as_posix(), ok[0], ok[1], pid))
            summary.recovered += 1


def _download(out: Path, state: CrawlState, recipe: recipes.Flickr, hosts: Sequence[str],
              summary: CrawlSummary, progress: bool, seed: int | None) -> None:
    summary.requeued = state.db.execute(
        "UPDATE photos SET status = 'pending' WHERE status = 'failed' AND retryable = 1 AND runs < ?",
        (recipe.max_download_runs,)).rowcount
    todo = state.db.execute("SELECT id, url FROM photos WHERE status = 'pending' ORDER BY seq").fetchall()
    if not todo:
        return
    dl = _Downloader(out, recipe, hosts, recipes.crop().max_image_pixels, seed)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="download", unit="photo", dynamic_ncols=True)
    window = max(1, 2 * recipe.concurrency)  # bounded: memory flat in the number of photos
    queue = collections.deque(todo)
    reasons: collections.Counter[str] = collections.Counter(summary.reasons)
    with ThreadPoolExecutor(max_workers=max(1, recipe.concurrency), thread_name_prefix="flickr-dl") as pool:
        inflight: set[Future] = set()
        try:
            while queue or inflight:
                while queue and len(inflight) < window:
                    pid, url = queue.popleft()
                    inflight.add(pool.submit(dl.fetch, pid, url))
                done, inflight = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in done:
                    r = fut.result()
                    status = "done" if r.ok else "failed"
                    state.db.execute(
                        "UPDATE photos SET status = ?, tries = tries + ?, runs = runs + 1, retryable = ?, "
                        "reason = ?, file = ?, bytes = ?, sha256 = ? WHERE id = ?",
                        (status, r.tries, int(r.retryable), r.reason, r.file, r.bytes, r.sha256, r.id))
                    _kill_point("download")
                    if r.ok:
                        summary.downloaded += 1
                        summary.bytes += r.bytes
                    else:
                        summary.failed += 1
                        reasons[_short_reason(r.reason)] += 1
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(ok=summary.downloaded, failed=summary.failed, refresh=False)
        except BaseException:
            for f in inflight:
                f.cancel()
            raise
        finally:
            if bar is not None:
                bar.close()
    summary.retries += dl.retries
    summary.retry_reasons = dict(dl.retry_reasons)
    summary.reasons = dict(reasons)


# --------------------------------------------------------------------------------------------
# The crawl
# --------------------------------------------------------------------------------------------
def photos_table(out: Path | str) -> pd.DataFrame:
    """The crawl's photos, one row each, with every query tag that found it.

    Columns: ``photo_id, owner, ownername, license, license_name, tags`` (the query tags, a list),
    ``flickr_tags, date_upload, url, page_url, status, tries, runs, retryable, reason, file, bytes,
    sha256`` (``runs``: runs that tried to download it; ``retryable``: its failure was transient).
    """
    path = Path(out) / STATE
    if not path.is_file():
        raise FileNotFoundError(f"no crawl state at {path}")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        photos = pd.read_sql_query("SELECT * FROM photos ORDER BY seq", db)
        tags = pd.read_sql_query("SELECT photo_id, tag FROM photo_tags", db)
    finally:
        db.close()
    by_photo = tags.groupby("photo_id")["tag"].agg(lambda s: sorted(s))
    photos = photos.rename(columns={"id": "photo_id"})
    photos["tags"] = photos["photo_id"].map(by_photo).apply(lambda v: v if isinstance(v, list) else [])
    photos["license_name"] = photos["license"].map(LICENSES).fillna("unknown")
    photos["page_url"] = "https://www.flickr.com/photos/" + photos["owner"] + "/" + photos["photo_id"]
    return photos[["photo_id", "owner", "ownername", "license", "license_name", "tags", "flickr_tags",
                   "date_upload", "url", "page_url", "title", "status", "tries", "runs", "retryable",
                   "reason", "file", "bytes", "sha256"]]


def windows_table(out: Path | str) -> pd.DataFrame:
    """The upload-date windows of each tag: ``tag, start, end`` (UTC dates), ``total``, ``done``.

    Shows how queries over the result cap were split (:func:`facelib.flickr.api.plan_windows`).
    """
    path = Path(out) / STATE
    if not path.is_file():
        raise FileNotFoundError(f"no crawl state at {path}")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        df = pd.read_sql_query("SELECT tag, start, end, total, done FROM windows ORDER BY tag, start", db)
    finally:
        db.close()
    for col in ("start", "end"):
        df[col] = pd.to_datetime(df[col], unit="s", utc=True)
    df["done"] = df["done"].astype(bool)
    return df


def refused_table(out: Path | str) -> pd.DataFrame:
    """Search records the crawl refused: ``tag, raw_id, reason`` (bad ids, no URL, licence)."""
    path = Path(out) / STATE
    if not path.is_file():
        raise FileNotFoundError(f"no crawl state at {path}")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return pd.read_sql_query("SELECT tag, raw_id, reason FROM invalid ORDER BY tag, raw_id", db)
    finally:
        db.close()


def crawl(
    out: Path | str,
    client: FlickrClient,
    tags: Sequence[str] = TAGS,
    licenses: Sequence[int] | None = None,
    max_photos: int | None = None,
    max_per_tag: int | None = None,
    photo_hosts: Sequence[str] | None = None,
    retry_failed: bool = False,
    download: bool = True,
    progress: bool = True,
    seed: int | None = None,
) -> CrawlSummary:
    """Search ``tags`` and download every photo found into ``out`` (resumable; see module doc).

    Args:
        out: the crawl folder (``crawl.sqlite``, ``images/``, ``photos.parquet``).
        client: a :class:`~facelib.flickr.api.FlickrClient` (its recipe sets page size,
            concurrency, retries, rate limits).
        tags: the query tags, searched in this order (default: the 100 of supplement 3).
        licenses: Flickr licence ids (default ``client.recipe.licenses``).
        max_photos: stop searching once the folder holds this many photos.
        max_per_tag: take at most this many photos per tag.
        photo_hosts: hosts photos may be downloaded from (default: Flickr's image hosts, or the
            API's host for any other API URL, such as the local server).
        retry_failed: download again every photo that failed before, final failures included
            (transient ones are tried again anyway, up to ``recipe.max_download_runs`` runs).
        download: run the download phase (``False``: search only).
        progress: progress bars.
        seed: seed of the backoff jitter.

    Returns:
        A :class:`CrawlSummary`; ``photos.parquet`` is rewritten at the end.
    """
    t0 = time.perf_counter()
    recipe = client.recipe
    tags = check_tags(list(tags))
    licenses = tuple(recipe.licenses if licenses is None else licenses)
    unknown = [x for x in licenses if x not in LICENSES]
    if unknown:
        raise ValueError(f"licenses: unknown Flickr licence id(s) {unknown}; known: {sorted(LICENSES)}")
    for name, v in (("max_photos", max_photos), ("max_per_tag", max_per_tag)):
        if v is not None and v < 0:
            raise ValueError(f"{name} must be >= 0, got {v}")
    if photo_hosts is None:
        photo_hosts = FLICKR_PHOTO_HOSTS if client.api_url == API_URL else (urlsplit(client.api_url).hostname or "",)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = CrawlSummary()
    with _lock(out):
        state = CrawlState(out / STATE)
        try:
            state.check_meta({
                "licenses": sorted(licenses), "size_suffix": recipe.size_suffix,
                "min_upload_date": to_unix(recipe.min_upload_date),
            })
            _reconcile(out, state, recipe, summary)
            if state.meta("max_upload_date") is None:  # fixed at the first run, so reruns agree
                now = int(_dt.datetime.now(_dt.timezone.utc).timestamp())
                state.db.execute("INSERT INTO meta VALUES ('max_upload_date', ?)", (json.dumps(now),))
            ts = time.perf_counter()
            _search(state, client, tags, licenses, max_photos, max_per_tag, summary, progress)
            summary.search_seconds = time.perf_counter() - ts
            if retry_failed:
                state.db.execute("UPDATE photos SET status = 'pending', reason = '', runs = 0 WHERE status = 'failed'")
            if download:
                td = time.perf_counter()
                _download(out, state, recipe, photo_hosts, summary, progress, seed)
                summary.download_seconds = time.perf_counter() - td
            counts = dict(state.db.execute("SELECT status, COUNT(*) FROM photos GROUP BY status").fetchall())
            summary.total_retryable = state.one(
                "SELECT COUNT(*) FROM photos WHERE status = 'failed' AND retryable = 1 AND runs < ?",
                (recipe.max_download_runs,))
        finally:
            state.close()
        storage.write_manifest(photos_table(out), out / PHOTOS, before_rename=lambda _: _kill_point("parquet"))
    summary.total_done = counts.get("done", 0)
    summary.total_failed = counts.get("failed", 0)
    summary.total_pending = counts.get("pending", 0)
    summary.total_photos = sum(counts.values())
    summary.seconds = time.perf_counter() - t0
    return summary
