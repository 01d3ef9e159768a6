"""A loopback stand-in for Flickr: enough of ``flickr.photos.search`` plus a photo server.

The crawler (:mod:`facelib.flickr.crawl`) must be demonstrable and testable without internet
and without an API key. :class:`LocalFlickr` serves, on ``127.0.0.1`` only:

* ``/services/rest/?method=flickr.photos.search&...``: tag search (Flickr's normalised tags),
  licence filter, upload-date window, ``sort=date-posted-asc``, pagination (``per_page`` up to
  500), the extras the crawler asks for, and Flickr's cap: past ``result_cap`` results a query
  only repeats its last pages, so a client that does not split queries by date loses photos;
* ``/photos/<id>_<secret>.jpg``: the 500-px photo, composed on request by
  :func:`facelib.flickr.scenes.compose`: synthetic faces of every size (4 px to most of the
  frame; portraits, groups, crowds; some rotated or partly covered) on scenes that ship with
  scikit-image. The same id always gives the same bytes, and the server keeps what it put in
  every photo it served (:meth:`LocalFlickr.truth`), so a page can score the detector.

:class:`Faults` injects what a real crawl meets: 429 with ``Retry-After``, 500 and 503, slow and
hanging responses, connection resets, truncated bodies, corrupt JPEGs, HTML instead of JPEG, a
wrong content type, 404/410 for photos that are gone, redirects to a placeholder elsewhere,
duplicate photos across pages and tags, and photo ids such as ``../../x`` that must never reach
a path. Faults are given per photo (``Faults.photo``), or drawn for every request at a rate
(``Faults.rate``, ``Faults.gone_rate``, ``Faults.api_rate``) from a hash of (seed, photo id,
request number): the same seed gives the same faults whatever the order or timing of requests.

The server runs in a daemon thread with a bounded request loop: it stops by itself after
``lifetime_s`` seconds (or ``max_requests`` requests) even if nobody calls :meth:`stop`.
Used by ``tests/test_flickr_*.py``, ``benchmarks/bench_flickr_crawl.py`` and the demo profile
of ``notebooks/02_flickr_face.py``.
"""

from __future__ import annotations

import collections
import datetime as _dt
import hashlib
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Sequence
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np

from facelib.flickr import scenes
from facelib.flickr.tags import TAGS, normalize_tag

__all__ = ["Photo", "Faults", "FAULT_KINDS", "TRANSIENT", "GONE", "RATE_KINDS", "DEMO_FAULTS", "make_catalog",
           "demo_faults", "photo_seed", "render_scene", "render_photo", "LocalFlickr"]

API_PATH = "/services/rest/"
PHOTO_PATH = "/photos/"
# Licences the catalogue mixes: reusable ones and some that a default crawl must filter out.
CATALOG_LICENSES = (4, 9, 10, 11, 0, 1, 2, 5)

# A photo's fault (Faults.photo) fails Faults.transient_times requests, then the photo is served,
# unless the photo is in Faults.lasting; the photo of a GONE fault is never served.
TRANSIENT = ("429", "500", "503", "slow", "hang", "reset", "truncated", "html", "wrong_type", "corrupt", "huge")
GONE = ("404", "410", "redirect_away")
FAULT_KINDS = TRANSIENT + GONE
# What a request meets at Faults.rate (every transient kind but "huge", a 64 MB body).
RATE_KINDS = tuple(k for k in TRANSIENT if k != "huge")
API_KINDS = ("429", "500", "503")


@dataclass(frozen=True)
class Photo:
    """One photo of the catalogue, as ``flickr.photos.search`` describes it."""

    id: str
    secret: str
    owner: str
    ownername: str
    license: int
    tags: tuple[str, ...]  # normalised (Flickr's machine form)
    date_upload: int  # unix seconds
    title: str


@dataclass
class Faults:
    """What the server does wrong, and how often.

    Attributes:
        photo: photo id -> one of :data:`FAULT_KINDS`.
        transient_times: how many requests of a photo's fault fail before the photo is served
            (not for :data:`GONE` faults, nor photos in ``lasting``: those always fail).
        lasting: photo ids whose fault never clears.
        rate: probability that a photo request meets a fault, drawn from ``kinds``.
        kinds: the faults ``rate`` draws from (default :data:`RATE_KINDS`).
        gone_rate: fraction of the photos that are gone: always 404 or 410.
        api_rate: probability that an API call answers 429, 500 or 503.
        seed: seed of the drawn faults (a hash of seed, photo id and request number).
        hang_s: a ``hang`` response sends its headers and part of the body, then stalls this long.
        retry_after_s: the ``Retry-After`` of a 429 (seconds; fractional values are sent as is).
        slow_s: how long a ``slow`` response sleeps before answering.
        latency_s: added to every photo response (a network round trip).
        api_429: the first this many API calls answer 429.
        api_500: the next this many API calls answer 500.
        api_unavailable: the next this many answer Flickr's error 105 (service unavailable).
        duplicate_pages: each page after the first starts with the last photo of the page before
            (Flickr's results shift while a query is paged).
        evil_ids: the first page of every query also lists photos whose ids are path tricks.
    """

    photo: dict[str, str] = field(default_factory=dict)
    transient_times: int = 2
    retry_after_s: float = 0.2
    slow_s: float = 3.0
    latency_s: float = 0.0
    api_429: int = 0
    api_500: int = 0
    api_unavailable: int = 0
    duplicate_pages: bool = False
    evil_ids: bool = False
    lasting: tuple[str, ...] = ()
    rate: float = 0.0
    kinds: tuple[str, ...] = RATE_KINDS
    gone_rate: float = 0.0
    api_rate: float = 0.0
    seed: int = 0
    hang_s: float = 10.0

    def __post_init__(self) -> None:
        for pid, kind in self.photo.items():
            if kind not in FAULT_KINDS:
                raise ValueError(f"Faults.photo[{pid!r}]: unknown fault {kind!r}; one of {FAULT_KINDS}")
        for kind in self.kinds:
            if kind not in TRANSIENT:
                raise ValueError(f"Faults.kinds: {kind!r} is not a transient fault; one of {TRANSIENT}")
        for name in ("rate", "gone_rate", "api_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"Faults.{name} must be in [0, 1], got {getattr(self, name)}")

    def _u(self, *parts: object) -> float:
        """A number in [0, 1) drawn from a hash of the seed and ``parts`` (no shared state)."""
        h = hashlib.sha256(":".join(map(str, (self.seed, *parts))).encode()).digest()
        return int.from_bytes(h[:8], "big") / 2.0**64

    def gone(self, photo_id: str) -> str:
        """The fault that makes ``photo_id`` unreachable ('' if it can be downloaded)."""
        kind = self.photo.get(photo_id, "")
        if kind in GONE or (kind and photo_id in self.lasting):
            return kind
        if self.gone_rate and self._u("gone", photo_id) < self.gone_rate:
            return "404" if self._u("gone-kind", photo_id) < 0.5 else "410"
        return ""

    def for_request(self, photo_id: str, n: int) -> str:
        """The fault request ``n`` (from 1) for ``photo_id`` meets ('' none)."""
        kind = self.photo.get(photo_id, "")
        if kind:
            return kind if kind in GONE or photo_id in self.lasting or n <= self.transient_times else ""
        gone = self.gone(photo_id)
        if gone:
            return gone
        if self.rate and self.kinds and self._u("photo", photo_id, n) < self.rate:
            return self.kinds[int(self._u("kind", photo_id, n) * len(self.kinds))]
        return ""

    def for_api_call(self, n: int) -> str:
        """The fault API call ``n`` (from 1) meets, drawn at ``api_rate`` ('' none)."""
        if self.api_rate and self._u("api", n) < self.api_rate:
            return API_KINDS[int(self._u("api-kind", n) * len(API_KINDS))]
        return ""


EVIL_IDS = ("../../evil", "..", "12/../../34", "/etc/passwd", "5\x00.jpg")


def make_catalog(
    n_photos: int,
    tags: Sequence[str] = TAGS[:8],
    seed: int = 0,
    start: str = "2012-01-01",
    end: str = "2020-01-01",
    licenses: Sequence[int] = CATALOG_LICENSES,
) -> list[Photo]:
    """A deterministic catalogue: each photo has 1-3 of ``tags`` (so tags share photos).

    Upload dates cluster (a few busy periods), which makes the date-window splitting of the
    crawler uneven, as on Flickr.
    """
    if n_photos < 0:
        raise ValueError(f"n_photos must be >= 0, got {n_photos}")
    rng = np.random.default_rng(seed)
    t0 = int(_dt.datetime.fromisoformat(start).replace(tzinfo=_dt.timezone.utc).timestamp())
    t1 = int(_dt.datetime.fromisoformat(end).replace(tzinfo=_dt.timezone.utc).timestamp())
    centers = rng.uniform(t0, t1, size=4)
    norm = [normalize_tag(t) for t in tags]
    photos = []
    for i in range(n_photos):
        if rng.random() < 0.5:
            date = int(np.clip(rng.normal(centers[rng.integers(4)], (t1 - t0) / 60), t0, t1))
        else:
            date = int(rng.integers(t0, t1))
        k = int(rng.choice([1, 1, 2, 3]))
        ptags = tuple(norm[j] for j in sorted(rng.choice(len(norm), size=min(k, len(norm)), replace=False)))
        owner = f"{10000 + int(rng.integers(0, max(4, n_photos // 3)))}@N0{int(rng.integers(0, 9))}"
        pid = str(50_000_000_000 + 7919 * i + int(rng.integers(0, 7919)))
        photos.append(Photo(
            id=pid, secret=hashlib.sha1(f"{seed}:{pid}".encode()).hexdigest()[:10], owner=owner,
            ownername=f"demo user {owner.split('@')[0]}", license=int(rng.choice(licenses)),
            tags=ptags, date_upload=date, title=f"demo photo {i}",
        ))
    return photos


#: The demo's faults: each transient one is retried into a download; the photo of the last, a
#: body that stays over the size cap, and the gone ones end as failures with their reason.
DEMO_FAULTS = ("429", "500", "reset", "truncated", "html", "wrong_type", "corrupt", "404", "410",
               "redirect_away", "huge")


def demo_faults(photos: Sequence[Photo], licenses: Sequence[int] = (4, 9, 10, 11), latency_s: float = 0.02) -> Faults:
    """One photo with each of :data:`DEMO_FAULTS`, chosen among photos with ``licenses``.

    What the book's demo crawl meets: every transient fault is retried into a download; a photo
    that is gone, and one whose body stays invalid through every try, end as failures with their
    reason.
    """
    keep = sorted((p for p in photos if p.license in set(licenses)), key=lambda p: (p.date_upload, p.id))
    chosen = list(zip(keep[1::3], DEMO_FAULTS))  # among the oldest photos: a crawl meets them first
    return Faults(photo={p.id: k for p, k in chosen}, latency_s=latency_s,
                  lasting=tuple(p.id for p, k in chosen if k == "huge"),
                  duplicate_pages=True, evil_ids=True, api_429=1, retry_after_s=0.2)


# --------------------------------------------------------------------------------------------
# Photos: synthetic faces composited into scenes (facelib.flickr.scenes), with their truth
# --------------------------------------------------------------------------------------------
def photo_seed(photo_id: str) -> int:
    """The :func:`facelib.flickr.scenes.compose` seed of a photo id (a hash: ids need not be numbers)."""
    return int(hashlib.sha256(photo_id.encode()).hexdigest()[:12], 16)


def render_scene(photo_id: str, quality: int = 90) -> tuple[bytes, scenes.SceneTruth]:
    """The JPEG of one catalogue photo and what is in it (deterministic in the id)."""
    scene = scenes.compose(photo_seed(photo_id))
    ok, buf = cv2.imencode(".jpg", scene.image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes(), scene.truth


def render_photo(photo_id: str, quality: int = 90) -> tuple[bytes, list[tuple[float, float, float, float]]]:
    """The JPEG of one catalogue photo and the true face boxes in it (deterministic in the id).

    Returns:
        (JPEG bytes of a photo whose long side is 500 px, list of ``x1, y1, x2, y2`` face boxes
        in its pixels). About one photo in ten has no face; sizes range from 4 px to most of the
        frame (:mod:`facelib.flickr.scenes`).
    """
    data, truth = render_scene(photo_id, quality)
    return data, [f.box for f in truth.faces]


# --------------------------------------------------------------------------------------------
# The HTTP server
# --------------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass  # the connection was reset on purpose

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        owner: LocalFlickr = self.server.owner
        parts = urlsplit(self.path)
        try:
            if parts.path == API_PATH:
                owner._api(self, parse_qs(parts.query))
            elif parts.path.startswith(PHOTO_PATH):
                owner._photo(self, parts.path[len(PHOTO_PATH):])
            else:
                self._send(404, b"not found", "text/plain")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None,
              length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _reset(self) -> None:
        """Abort the connection with a TCP reset (SO_LINGER 0)."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True
    owner: LocalFlickr


class LocalFlickr:
    """The loopback Flickr (use as a context manager, or :meth:`start` / :meth:`stop`).

    Args:
        photos: the catalogue (:func:`make_catalog`).
        api_key: the key the API accepts; any other key gets Flickr's error 100.
        faults: what goes wrong (:class:`Faults`); nothing by default.
        result_cap: unique results one query can reach (Flickr: about 4000).
        lifetime_s: the server stops by itself after this long.
        max_requests: ... or after this many requests (``None``: no limit).
        cache_size: rendered photos kept in memory.

    Attributes:
        hits: request path -> number of requests (photo paths and ``"api"``).
        served: fault kind -> photo requests answered with it (``""``: the photo).
        times: request path -> monotonic times of the requests.
    """

    def __init__(
        self,
        photos: Sequence[Photo],
        api_key: str = "local-demo-key",
        faults: Faults | None = None,
        result_cap: int = 4000,
        lifetime_s: float = 600.0,
        max_requests: int | None = None,
        cache_size: int = 512,
    ) -> None:
        ids = [p.id for p in photos]
        if len(set(ids)) != len(ids):
            raise ValueError("photo ids must be unique")
        self.photos = sorted(photos, key=lambda p: (p.date_upload, p.id))
        self.by_id = {p.id: p for p in photos}
        self.api_key = api_key
        self.faults = faults or Faults()
        self.result_cap = result_cap
        self.lifetime_s = lifetime_s
        self.max_requests = max_requests
        self.cache_size = cache_size
        self.hits: collections.Counter[str] = collections.Counter()
        self.served: collections.Counter[str] = collections.Counter()
        self.times: dict[str, list[float]] = collections.defaultdict(list)
        self._lock = threading.Lock()
        self._cache: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        self._truth: dict[str, scenes.SceneTruth] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.n_requests = 0

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError("the server is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        """The REST endpoint, as ``https://api.flickr.com/services/rest/`` is Flickr's."""
        return self.url + API_PATH

    def start(self, port: int = 0) -> LocalFlickr:
        """Listen on ``127.0.0.1:port`` (0: any free port) and serve in a daemon thread."""
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.owner = self
        self._server.timeout = 0.1
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="local-flickr", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        assert self._server is not None
        deadline = time.monotonic() + self.lifetime_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            if self.max_requests is not None and self.n_requests >= self.max_requests:
                break
            self._server.handle_request()
        self._server.server_close()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> LocalFlickr:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- bookkeeping -------------------------------------------------------------------------
    def _hit(self, key: str) -> int:
        with self._lock:
            self.n_requests += 1
            self.hits[key] += 1
            self.times[key].append(time.monotonic())
            return self.hits[key]

    def photo_bytes(self, photo_id: str) -> bytes:
        """The JPEG served for ``photo_id`` (rendered once, then cached)."""
        with self._lock:
            if photo_id in self._cache:
                self._cache.move_to_end(photo_id)
                return self._cache[photo_id]
        data, truth = render_scene(photo_id)
        with self._lock:
            self._truth[photo_id] = truth
            self._cache[photo_id] = data
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return data

    def truth(self, photo_ids: Sequence[str] | None = None) -> Any:
        """What the server put into its photos: one row per face (:func:`scenes.truth_table`).

        Args:
            photo_ids: the photos to describe (default: every photo served so far); photos
                not served yet are composed now.
        """
        ids = list(self._truth) if photo_ids is None else [str(p) for p in photo_ids]
        for pid in ids:
            if pid not in self._truth:
                if pid not in self.by_id:
                    raise KeyError(f"photo {pid!r} is not in the catalogue")
                self._truth[pid] = scenes.compose(photo_seed(pid)).truth
        return scenes.truth_table({pid: self._truth[pid] for pid in ids})

    def prerender(self) -> None:
        """Render every photo now (benchmarks: keep rendering out of the timed part)."""
        self.cache_size = max(self.cache_size, len(self.photos))
        for p in self.photos:
            self.photo_bytes(p.id)

    def photo_url(self, p: Photo) -> str:
        return f"{self.url}{PHOTO_PATH}{p.id}_{p.secret}.jpg"

    # -- flickr.photos.search ----------------------------------------------------------------
    def search(self, q: dict[str, list[str]]) -> dict[str, Any]:
        """The JSON answer of ``flickr.photos.search`` for query parameters ``q``."""
        get = lambda k, d="": q.get(k, [d])[0]  # noqa: E731
        if get("api_key") != self.api_key:
            return {"stat": "fail", "code": 100, "message": "Invalid API Key (Key not found)"}
        if get("method") != "flickr.photos.search":
            return {"stat": "fail", "code": 112, "message": f"Method \"{get('method')}\" not found"}
        tags = {normalize_tag(t) for t in get("tags").split(",") if normalize_tag(t)}
        lic = {int(x) for x in get("license").split(",") if x.strip()}
        lo = int(get("min_upload_date", "0") or 0)
        hi = int(get("max_upload_date", str(2**62)) or 2**62)
        per_page = max(1, min(500, int(get("per_page", "100") or 100)))
        page = max(1, int(get("page", "1") or 1))
        extras = {e.strip() for e in get("extras").split(",") if e.strip()}
        hits = [p for p in self.photos
                if (not tags or tags & set(p.tags)) and (not lic or p.license in lic)
                and lo <= p.date_upload <= hi]
        total = len(hits)
        pages = max(1, -(-total // per_page))
        reachable = hits[: self.result_cap]
        last_page = max(1, -(-len(reachable) // per_page))
        eff = min(page, last_page)  # past the cap Flickr repeats what it can serve
        chunk = reachable[(eff - 1) * per_page: eff * per_page]
        if self.faults.duplicate_pages and eff > 1:
            chunk = [reachable[(eff - 1) * per_page - 1]] + chunk[:-1] + chunk[-1:]
        out = [self._describe(p, extras) for p in chunk]
        if self.faults.evil_ids and page == 1 and chunk:
            for evil in EVIL_IDS:
                rec = dict(out[0])
                rec["id"] = evil
                out.append(rec)
        return {"photos": {"page": page, "pages": pages, "perpage": per_page, "total": total,
                           "photo": out}, "stat": "ok"}

    def _describe(self, p: Photo, extras: set[str]) -> dict[str, Any]:
        d: dict[str, Any] = {"id": p.id, "owner": p.owner, "secret": p.secret, "server": "65535",
                             "farm": 66, "title": p.title, "ispublic": 1, "isfriend": 0,
                             "isfamily": 0}
        if "license" in extras:
            d["license"] = str(p.license)
        if "date_upload" in extras:
            d["dateupload"] = str(p.date_upload)
        if "owner_name" in extras:
            d["ownername"] = p.ownername
        if "tags" in extras:
            d["tags"] = " ".join(p.tags)
        if "url_m" in extras:
            d["url_m"] = self.photo_url(p)
            d["height_m"], d["width_m"] = 375, 500
        return d

    def _api(self, h: _Handler, q: dict[str, list[str]]) -> None:
        n = self._hit("api")
        drawn = self.faults.for_api_call(n)
        if drawn:
            h._send(int(drawn), b"<html>busy</html>", "text/html",
                    {"Retry-After": f"{self.faults.retry_after_s:g}"} if drawn == "429" else None)
            return
        if n <= self.faults.api_429:
            h._send(429, b"Too Many Requests", "text/plain",
                    {"Retry-After": f"{self.faults.retry_after_s:g}"})
            return
        if n <= self.faults.api_429 + self.faults.api_500:
            h._send(500, b"<html>Internal Server Error</html>", "text/html")
            return
        if n <= self.faults.api_429 + self.faults.api_500 + self.faults.api_unavailable:
            body = {"stat": "fail", "code": 105, "message": "Service currently unavailable"}
            h._send(200, json.dumps(body).encode(), "application/json")
            return
        body = json.dumps(self.search(q)).encode()
        h._send(200, body, "application/json")

    # -- photos ------------------------------------------------------------------------------
    def _photo(self, h: _Handler, name: str) -> None:
        n = self._hit(name)
        pid, _, rest = name.partition("_")
        p = self.by_id.get(pid)
        if p is None or rest != f"{p.secret}.jpg":
            h._send(404, b"<html>no such photo</html>", "text/html")
            return
        if self.faults.latency_s:
            time.sleep(self.faults.latency_s)
        kind = self.faults.for_request(pid, n)
        with self._lock:
            self.served[kind] += 1
        data = self.photo_bytes(pid)
        if not kind:
            h._send(200, data, "image/jpeg")
        elif kind == "429":
            h._send(429, b"slow down", "text/plain", {"Retry-After": f"{self.faults.retry_after_s:g}"})
        elif kind in ("500", "503"):
            h._send(int(kind), b"<html>oops</html>", "text/html")
        elif kind == "hang":  # headers and a first part, then nothing: the client's read times out
            h.send_response(200)
            h.send_header("Content-Type", "image/jpeg")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data[:1024])
            h.wfile.flush()
            self._stop.wait(self.faults.hang_s)
            h._reset()
        elif kind == "corrupt":  # a JPEG's header, then bytes that do not decode; the length is right
            junk = np.random.default_rng(int(hashlib.sha256(f"{pid}:{n}".encode()).hexdigest()[:12], 16))
            h._send(200, data[:600] + junk.bytes(len(data) - 600), "image/jpeg")
        elif kind == "slow":
            time.sleep(self.faults.slow_s)
            h._send(200, data, "image/jpeg")
        elif kind == "reset":
            h._reset()
        elif kind == "truncated":
            h.send_response(200)
            h.send_header("Content-Type", "image/jpeg")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            h._reset()
        elif kind == "html":
            h._send(200, b"<!DOCTYPE html><html><body>This photo is no longer available</body></html>",
                    "text/html; charset=utf-8")
        elif kind == "wrong_type":
            h._send(200, data, "application/octet-stream")
        elif kind in ("404", "410"):
            h._send(int(kind), b"<html>gone</html>", "text/html")
        elif kind == "redirect_away":  # as Flickr sends a deleted photo to a placeholder elsewhere
            port = self._server.server_address[1] if self._server else 0
            h._send(302, b"", "text/html", {"Location": f"http://localhost:{port}{PHOTO_PATH}{name}"})
        elif kind == "huge":  # a body far over any size cap, streamed
            pad = 64 << 20
            h.send_response(200)
            h.send_header("Content-Type", "image/jpeg")
            h.send_header("Content-Length", str(len(data) + pad))
            h.end_headers()
            h.wfile.write(data)
            zeros = bytes(1 << 20)
            for _ in range(pad >> 20):
                h.wfile.write(zeros)
