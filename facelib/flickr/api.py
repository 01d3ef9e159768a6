"""A client for the Flickr REST method ``flickr.photos.search``, and the upload-date windows.

The authors' scraper called ``flickr.photos.search`` by tag with a licence filter and saved the
500-px images (supplement 3; ``book/paper_and_code.md``). Flickr serves at most about 4000
unique results for one query (later pages repeat), so :func:`plan_windows` splits a tag's query
into upload-date windows, bisecting each until its total is below the cap.

The API key comes from the environment variable ``FLICKR_API_KEY`` only
(:meth:`FlickrClient.from_env`). It is kept in a private attribute, never shown by ``repr``,
never put in an exception message (errors name the method, tag and page, not the URL) and never
stored by the crawl.

Used by :mod:`facelib.flickr.crawl`; shown in ``notebooks/02_flickr_face.py``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import random
import re
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Sequence
from urllib.parse import urlencode

from facelib import recipes
from facelib.flickr.tags import normalize_tag
from facelib.flickr.transport import (
    PermanentError,
    RateLimiter,
    RetryPolicy,
    TransientError,
    open_url,
    with_retries,
)

__all__ = [
    "API_URL",
    "ENV_KEY",
    "LICENSES",
    "MissingAPIKey",
    "FlickrAPIError",
    "PhotoRecord",
    "SearchPage",
    "FlickrClient",
    "parse_photo",
    "valid_photo_id",
    "plan_windows",
    "to_unix",
]

API_URL = "https://api.flickr.com/services/rest/"
ENV_KEY = "FLICKR_API_KEY"

# Flickr's licence ids (flickr.photos.licenses.getInfo).
LICENSES: dict[int, str] = {
    0: "All Rights Reserved",
    1: "CC BY-NC-SA 2.0",
    2: "CC BY-NC 2.0",
    3: "CC BY-NC-ND 2.0",
    4: "CC BY 2.0",
    5: "CC BY-SA 2.0",
    6: "CC BY-ND 2.0",
    7: "No known copyright restrictions",
    8: "United States Government Work",
    9: "CC0 1.0 (Public Domain Dedication)",
    10: "Public Domain Mark 1.0",
    11: "CC BY 4.0",
    12: "CC BY-SA 4.0",
    13: "CC BY-ND 4.0",
    14: "CC BY-NC 4.0",
    15: "CC BY-NC-SA 4.0",
    16: "CC BY-NC-ND 4.0",
}

_PHOTO_ID = re.compile(r"^[0-9]{1,20}$")
# Flickr error codes that mean "try again later": 10 (search API not currently available),
# 105 (service currently unavailable).
RETRYABLE_CODES = frozenset({10, 105})


class MissingAPIKey(RuntimeError):
    """``FLICKR_API_KEY`` is not set."""


class FlickrAPIError(RuntimeError):
    """The API answered with an error (``code``: Flickr's error code, 0 for HTTP/network)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


def valid_photo_id(photo_id: object) -> bool:
    """Flickr photo ids are decimal numbers; anything else (``../x``, ``/etc``) is refused."""
    return isinstance(photo_id, str) and bool(_PHOTO_ID.match(photo_id))


@dataclass(frozen=True)
class PhotoRecord:
    """One search result: what the crawl stores for attribution and download."""

    id: str
    owner: str
    ownername: str
    license: int
    tags: str  # Flickr's space-separated machine tags
    date_upload: int
    url: str
    title: str


@dataclass
class SearchPage:
    """One page of ``flickr.photos.search``.

    Attributes:
        invalid: ``(raw id, reason)`` of records that were refused (bad id, no URL, ...).
    """

    page: int
    pages: int
    per_page: int
    total: int
    photos: list[PhotoRecord] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)


def parse_photo(rec: Mapping[str, object], size_suffix: str) -> PhotoRecord:
    """A :class:`PhotoRecord` from one JSON record, or ``ValueError`` naming what is wrong."""
    pid = rec.get("id")
    if not valid_photo_id(pid):
        raise ValueError("photo id is not a decimal number")
    url = rec.get(f"url_{size_suffix}")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"no url_{size_suffix} (the photo has no {size_suffix!r} size)")
    try:
        lic = int(str(rec.get("license", "-1")))
        date = int(str(rec.get("dateupload", "0")))
    except ValueError:
        raise ValueError("license or dateupload is not a number") from None
    return PhotoRecord(
        id=str(pid), owner=str(rec.get("owner", "")), ownername=str(rec.get("ownername", "")),
        license=lic, tags=str(rec.get("tags", "")), date_upload=date, url=url,
        title=str(rec.get("title", ""))[:500],
    )


def to_unix(date: str | int | _dt.datetime) -> int:
    """Unix seconds of an ISO date (UTC), a datetime or seconds."""
    if isinstance(date, int):
        return date
    if isinstance(date, str):
        date = _dt.datetime.fromisoformat(date)
    if date.tzinfo is None:
        date = date.replace(tzinfo=_dt.timezone.utc)
    return int(date.timestamp())


class FlickrClient:
    """``flickr.photos.search`` with a rate limit and retries.

    Args:
        api_key: the key (use :meth:`from_env`; never pass it on a command line).
        recipe: crawl settings (page size, image size, retries, API rate).
        api_url: the REST endpoint (the local server's for demos and tests).
        rng: jitter source for backoff.
    """

    def __init__(self, api_key: str, recipe: recipes.Flickr | None = None, api_url: str = API_URL,
                 rng: random.Random | None = None) -> None:
        if not api_key or not api_key.strip():
            raise MissingAPIKey(f"an empty Flickr API key; set {ENV_KEY} in the environment")
        self.__key = api_key.strip()
        self.recipe = recipe or recipes.flickr()
        self.api_url = api_url
        self.rng = rng or random.Random()
        self.policy = RetryPolicy(self.recipe.max_tries, self.recipe.backoff_s, self.recipe.backoff_max_s)
        self.limiter = RateLimiter(self.recipe.api_rate)
        self.calls = 0
        self.on_retry: Callable[[int, TransientError, float], None] | None = None

    @classmethod
    def from_env(cls, recipe: recipes.Flickr | None = None, api_url: str = API_URL,
                 env: Mapping[str, str] | None = None) -> FlickrClient:
        """A client whose key is ``$FLICKR_API_KEY``.

        Raises:
            MissingAPIKey: the variable is unset or empty (the message says how to set it).
        """
        key = (env if env is not None else os.environ).get(ENV_KEY, "")
        if not key.strip():
            raise MissingAPIKey(
                f"{ENV_KEY} is not set: get a key at https://www.flickr.com/services/apps/create/ "
                f"and export {ENV_KEY}=... in the shell that runs the crawl (never pass it as a "
                "notebook parameter or command-line argument)"
            )
        return cls(key, recipe, api_url)

    def __repr__(self) -> str:
        return f"FlickrClient(api_url={self.api_url!r}, key=<hidden>)"

    def redact(self, text: str) -> str:
        """``text`` with the key replaced (for anything the server echoes back)."""
        return text.replace(self.__key, "<hidden>")

    @property
    def extras(self) -> str:
        return f"license,date_upload,owner_name,tags,url_{self.recipe.size_suffix}"

    def search(self, tag: str, licenses: Sequence[int], min_upload_date: int, max_upload_date: int,
               page: int = 1, per_page: int | None = None) -> SearchPage:
        """One page of photos having ``tag``, oldest upload first.

        Args:
            tag: one tag (Flickr matches its normalised form: ``"group photo"`` -> ``groupphoto``).
            licenses: licence ids (:data:`LICENSES`); empty: any licence.
            min_upload_date, max_upload_date: inclusive window in unix seconds.
            page: 1-based page number.
            per_page: up to 500 (default ``recipe.per_page``).

        Raises:
            FlickrAPIError: an API error, or a transient failure after ``recipe.max_tries`` tries.
        """
        per_page = per_page or self.recipe.per_page
        if not 1 <= per_page <= 500:
            raise ValueError(f"per_page must be in [1, 500], got {per_page}")
        params = {
            "method": "flickr.photos.search", "api_key": self.__key, "tags": normalize_tag(tag),
            "tag_mode": "any", "license": ",".join(str(int(x)) for x in licenses),
            "min_upload_date": str(int(min_upload_date)), "max_upload_date": str(int(max_upload_date)),
            "media": "photos", "content_type": "1", "sort": "date-posted-asc", "extras": self.extras,
            "per_page": str(per_page), "page": str(page), "format": "json", "nojsoncallback": "1",
        }
        url = self.api_url + "?" + urlencode(params)
        what = f"flickr.photos.search (tag {tag!r}, page {page})"

        def call() -> dict:
            self.limiter.acquire()
            self.calls += 1
            resp = open_url(url, self.recipe.timeout_s, what)
            try:
                body = resp.read(50_000_000)
            except OSError as e:
                raise TransientError(f"{what}: connection lost ({type(e).__name__})") from None
            finally:
                resp.close()
            try:
                data = json.loads(body)
            except ValueError:
                raise TransientError(f"{what}: the answer is not JSON") from None
            if data.get("stat") != "ok" and int(data.get("code", 0) or 0) in RETRYABLE_CODES:
                raise TransientError(f"{what}: Flickr error {data.get('code')} "
                                     f"({self.redact(str(data.get('message', '')))})")
            return data

        try:
            data, _ = with_retries(call, self.policy, self.rng, on_retry=self.on_retry)
        except PermanentError as e:
            raise FlickrAPIError(self.redact(e.reason)) from None
        except Exception as e:  # GaveUp
            raise FlickrAPIError(self.redact(str(e))) from None
        if data.get("stat") != "ok":
            code = int(data.get("code", 0) or 0)
            raise FlickrAPIError(f"{what}: Flickr error {code}: {self.redact(str(data.get('message', '')))}", code)
        ph = data.get("photos") or {}
        out = SearchPage(page=int(ph.get("page", page)), pages=int(ph.get("pages", 0)),
                         per_page=int(ph.get("perpage", per_page)), total=int(ph.get("total", 0)))
        for rec in ph.get("photo", []) or []:
            try:
                out.photos.append(parse_photo(rec, self.recipe.size_suffix))
            except ValueError as e:
                out.invalid.append((repr(rec.get("id"))[:80], str(e)))
        return out


def plan_windows(count: Callable[[int, int], int], lo: int, hi: int, cap: int) -> Iterator[tuple[int, int, int]]:
    """Split ``[lo, hi]`` (inclusive unix seconds) into windows holding fewer than ``cap`` results.

    Args:
        count: the number of results in a window (one search call with ``per_page=1``).
        lo, hi: the whole range.
        cap: the most results a query can page through.

    Yields:
        ``(start, end, total)`` windows in increasing date order, covering ``[lo, hi]`` without
        overlap. A one-second window over the cap is yielded as it is (it cannot be split).
    """
    stack = [(lo, hi)]
    while stack:
        a, b = stack.pop()
        n = count(a, b)
        if n < cap or a >= b:
            yield a, b, n
            continue
        mid = (a + b) // 2
        stack.append((mid + 1, b))
        stack.append((a, mid))
