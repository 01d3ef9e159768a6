"""HTTP for the crawler: a global rate limit, retries with backoff, streamed checked downloads.

A crawl of millions of photos meets every transient failure there is. The rules here:

* 429 (honouring ``Retry-After``), 5xx, other 4xx than 404/410, timeouts, connection resets and
  truncated bodies are *transient*: retried with exponential backoff and full jitter (delay
  drawn uniformly in ``[0, min(backoff_max, backoff * 2**try)]``, never less than
  ``Retry-After``), up to ``max_tries`` tries, after which :class:`GaveUp` carries the last
  reason;
* a 200 whose body is not the photo (a wrong content type, an HTML page, bytes without an
  image's magic, over the size cap, or that do not decode) is an :class:`InvalidBody`: proxies,
  CDNs and rate limiters send such pages now and then, so it is retried like a 5xx; only a body
  that stays invalid through every try is final (:attr:`GaveUp.invalid_only`);
* 404 and 410 (the photo is gone) and a redirect to a host that is not allowed (Flickr's
  placeholder for a deleted photo) are *permanent*: no retry, the reason is recorded;
* a body is streamed to a temporary file, never held in memory.

Messages never contain a request URL (API URLs carry the key). Used by
:mod:`facelib.flickr.api` and :mod:`facelib.flickr.crawl`.
"""

from __future__ import annotations

import email.utils
import http.client
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TypeVar
from urllib.parse import urlsplit

__all__ = [
    "RateLimiter",
    "RetryPolicy",
    "TransientError",
    "InvalidBody",
    "PermanentError",
    "GaveUp",
    "backoff_delay",
    "with_retries",
    "open_url",
    "image_kind",
    "download_to",
    "host_allowed",
    "IMAGE_TYPES",
]

T = TypeVar("T")
USER_AGENT = "facelib-flickr-crawler/0.1 (+https://github.com/; research reproduction)"
# Content types accepted for a photo, and the file suffix each is stored under.
IMAGE_TYPES = {"image/jpeg": ".jpg", "image/jpg": ".jpg", "image/png": ".png", "image/gif": ".gif",
               "image/webp": ".webp"}
CHUNK = 1 << 16


class TransientError(Exception):
    """A failure worth retrying. ``retry_after``: seconds the server asked us to wait."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class InvalidBody(TransientError):
    """A 200 answer whose body is not the photo (HTML, wrong type, bad bytes): retried like a 5xx."""


class PermanentError(Exception):
    """A failure that another try would repeat (404, 410, a redirect off the allowed hosts, ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GaveUp(Exception):
    """A transient failure persisted for ``tries`` tries; ``reason`` is the last one.

    ``invalid_only``: every try got a body that was not the photo (:class:`InvalidBody`): the
    answer is final, not a passing fault.
    """

    def __init__(self, reason: str, tries: int, invalid_only: bool = False) -> None:
        super().__init__(f"gave up after {tries} tries: {reason}")
        self.reason = reason
        self.tries = tries
        self.invalid_only = invalid_only


class RateLimiter:
    """At most ``rate`` acquisitions per second across all threads (0 or less: no limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry (from ``recipes.Flickr``)."""

    max_tries: int = 5
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    retry_after_max_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise ValueError(f"max_tries must be >= 1, got {self.max_tries}")
        if self.backoff_s < 0 or self.backoff_max_s < 0:
            raise ValueError("backoff_s and backoff_max_s must be >= 0")


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random,
                  retry_after: float | None = None) -> float:
    """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 0).

    Full jitter: uniform in ``[0, min(backoff_max_s, backoff_s * 2**attempt)]``; at least the
    server's ``Retry-After`` (itself capped at ``retry_after_max_s``).
    """
    delay = rng.uniform(0.0, min(policy.backoff_max_s, policy.backoff_s * (2.0 ** attempt)))
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.retry_after_max_s))
    return delay


def with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    rng: random.Random | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, TransientError, float], None] | None = None,
) -> tuple[T, int]:
    """Call ``fn`` until it succeeds, raises :class:`PermanentError`, or tries run out.

    Returns:
        (the result, the number of tries it took).

    Raises:
        PermanentError: as raised by ``fn`` (not retried).
        GaveUp: ``policy.max_tries`` transient failures.
    """
    rng = rng or random.Random()
    invalid_only = True
    for attempt in range(policy.max_tries):
        try:
            return fn(), attempt + 1
        except TransientError as e:
            invalid_only = invalid_only and isinstance(e, InvalidBody)
            if attempt + 1 >= policy.max_tries:
                raise GaveUp(e.reason, attempt + 1, invalid_only) from None
            delay = backoff_delay(attempt, policy, rng, e.retry_after)
            if on_retry is not None:
                on_retry(attempt, e, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; ``None`` if absent/garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


_LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: HTTP statuses that say the resource is gone for good: never retried.
GONE = (404, 410)


def host_allowed(url: str, hosts: Sequence[str]) -> bool:
    """Whether ``url`` is http(s) on one of ``hosts`` or a subdomain of one."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme in ("http", "https") and any(host == h or host.endswith("." + h) for h in hosts)


class _RedirectGuard(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http(s) URLs on the allowed hosts (``None``: any http(s) host).

    Flickr answers a deleted photo with a redirect to a placeholder image on another host; that
    placeholder must not be stored as a photo.
    """

    def __init__(self, hosts: Sequence[str] | None, what: str) -> None:
        self.hosts = hosts
        self.what = what

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        ok = host_allowed(newurl, self.hosts) if self.hosts is not None else \
            urlsplit(newurl).scheme in ("http", "https")
        if not ok:
            raise PermanentError(f"{self.what}: redirected to a host that is not allowed "
                                 f"({urlsplit(newurl).hostname!r})")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def open_url(url: str, timeout: float, what: str, hosts: Sequence[str] | None = None) -> http.client.HTTPResponse:
    """GET ``url``; a non-2xx answer or a network failure becomes a typed error.

    ``what`` names the request in messages (the URL never appears: it may hold the API key).
    Redirects are followed only to http(s) URLs on ``hosts`` (``None``: any http(s) host).
    Loopback URLs bypass any proxy configured in the environment.
    """
    host = urlsplit(url).hostname or ""
    handlers: list = [_RedirectGuard(hosts, what)]
    if host in _LOOPBACK:
        handlers.append(urllib.request.ProxyHandler({}))
    opener = urllib.request.build_opener(*handlers)
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        return opener.open(req, timeout=timeout)  # type: ignore[return-value]
    except urllib.error.HTTPError as e:
        code = e.code
        retry_after = parse_retry_after(e.headers.get("Retry-After") if e.headers else None)
        e.close()
        if code == 429:
            raise TransientError(f"{what}: HTTP 429 too many requests", retry_after) from None
        if code in GONE:
            raise PermanentError(f"{what}: HTTP {code}") from None
        raise TransientError(f"{what}: HTTP {code}", retry_after) from None
    except (TimeoutError, socket.timeout):
        raise TransientError(f"{what}: timed out after {timeout:g} s") from None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise TransientError(f"{what}: timed out after {timeout:g} s") from None
        raise TransientError(f"{what}: connection failed ({type(reason).__name__})") from None
    except (ConnectionError, http.client.HTTPException, OSError) as e:
        raise TransientError(f"{what}: connection failed ({type(e).__name__})") from None


def image_kind(head: bytes) -> str | None:
    """The image format from the file's first bytes (``"jpeg"``, ``"png"``, ...), or ``None``."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


_KIND_TYPES = {"jpeg": ("image/jpeg", "image/jpg"), "png": ("image/png",), "gif": ("image/gif",),
               "webp": ("image/webp",)}


def download_to(url: str, dest: Path, timeout: float, max_bytes: int, what: str,
                hosts: Sequence[str] | None = None) -> tuple[str, int]:
    """Stream one photo into ``dest`` (a temporary name), checking it on the way.

    Checks, in order: HTTP status (via :func:`open_url`; redirects only to ``hosts``),
    ``Content-Type`` is an image type,
    declared and actual size within ``max_bytes``, the magic bytes match the content type, and
    the body is as long as ``Content-Length`` said (shorter: truncated, transient).

    Returns:
        (file suffix for the format, number of bytes written).

    Raises:
        TransientError (:class:`InvalidBody` for a body that is not the photo), PermanentError.
        ``dest`` may be left behind; the caller removes it.
    """
    resp = open_url(url, timeout, what, hosts)
    try:
        ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype not in IMAGE_TYPES:
            raise InvalidBody(f"{what}: content type {ctype or 'missing'!r} is not an image type")
        declared = resp.headers.get("Content-Length")
        length = int(declared) if declared and declared.isdigit() else None
        if length is not None and length > max_bytes:
            raise InvalidBody(f"{what}: {length} bytes declared, over the {max_bytes}-byte cap")
        n = 0
        with open(dest, "wb") as f:
            while True:
                try:
                    chunk = resp.read(CHUNK)
                except (TimeoutError, socket.timeout):
                    raise TransientError(f"{what}: timed out while reading the body") from None
                except (ConnectionError, http.client.HTTPException, OSError) as e:
                    raise TransientError(f"{what}: connection lost while reading ({type(e).__name__})") from None
                if not chunk:
                    break
                if n == 0:
                    kind = image_kind(chunk[:16])
                    if kind is None:
                        raise InvalidBody(f"{what}: the body is not an image (no image magic bytes)")
                    if ctype not in _KIND_TYPES[kind]:
                        raise InvalidBody(f"{what}: content type {ctype!r} but the body is {kind}")
                n += len(chunk)
                if n > max_bytes:
                    raise InvalidBody(f"{what}: body over the {max_bytes}-byte cap")
                f.write(chunk)
        if length is not None and n < length:
            raise TransientError(f"{what}: truncated body ({n} of {length} bytes)")
        if n == 0:
            raise TransientError(f"{what}: empty body")
        return IMAGE_TYPES[ctype], n
    finally:
        resp.close()
