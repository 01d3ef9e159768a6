"""flickr.photos.search client, date windows, retries; against the loopback server."""

from __future__ import annotations

import random

import pytest

from facelib.flickr import api, local_server, transport
from facelib.flickr.tags import normalize_tag

from flickr_fixtures import catalog, client, fast_recipe


@pytest.fixture()
def server():
    with local_server.LocalFlickr(catalog(80), api_key="test-key", result_cap=30, lifetime_s=60) as s:
        yield s


# ---- date windows ------------------------------------------------------------------------------
def test_plan_windows_covers_the_range_without_overlap_and_below_the_cap():
    rng = random.Random(0)
    dates = sorted(rng.randint(0, 10_000) for _ in range(500)) + [5000] * 3
    count = lambda a, b: sum(a <= d <= b for d in dates)  # noqa: E731
    windows = list(api.plan_windows(count, 0, 10_000, cap=40))
    assert windows[0][0] == 0 and windows[-1][1] == 10_000
    for (a1, b1, _), (a2, _, _) in zip(windows, windows[1:]):
        assert a2 == b1 + 1
    assert all(n < 40 for _, _, n in windows)
    assert sum(n for _, _, n in windows) == len(dates)


def test_plan_windows_keeps_an_unsplittable_second():
    windows = list(api.plan_windows(lambda a, b: 100 if a <= 7 <= b else 0, 0, 15, cap=10))
    assert (7, 7, 100) in windows
    assert sum(b - a + 1 for a, b, _ in windows) == 16


# ---- search --------------------------------------------------------------------------------------
def test_search_pages_licences_and_extras(server):
    c = client(server)
    lo, hi = 0, 2**40
    first = c.search("people", api.LICENSES.keys(), lo, hi, page=1, per_page=7)
    expected = [p for p in server.photos if "people" in p.tags]
    assert first.total == len(expected) and first.pages == -(-len(expected) // 7)
    got = []
    for page in range(1, 5):  # 28 results, below the server's cap of 30
        got += [p.id for p in c.search("people", api.LICENSES.keys(), lo, hi, page=page, per_page=7).photos]
    assert got == [p.id for p in expected][:28]  # oldest upload first
    rec = first.photos[0]
    src = server.by_id[rec.id]
    assert (rec.owner, rec.license, rec.date_upload, rec.tags) == (src.owner, src.license, src.date_upload,
                                                                  " ".join(src.tags))
    assert rec.url.endswith(f"/photos/{src.id}_{src.secret}.jpg")
    only = c.search("people", [9], lo, hi, per_page=100)
    assert only.photos and all(p.license == 9 for p in only.photos)


def test_group_photo_searches_the_machine_tag(server):
    res = client(server).search("group photo", [], 0, 2**40, per_page=100)
    assert res.total == sum("groupphoto" in p.tags for p in server.photos) > 0


def test_the_result_cap_loses_photos_unless_windows_are_split(server):
    c = client(server, per_page=10)
    tag, lic = "people", list(api.LICENSES)
    total = c.search(tag, lic, 0, 2**40, per_page=1).total
    assert total > server.result_cap
    naive = set()
    for page in range(1, -(-total // 10) + 1):
        naive |= {p.id for p in c.search(tag, lic, 0, 2**40, page=page).photos}
    assert len(naive) == server.result_cap < total  # later pages repeat
    windowed = set()
    for a, b, n in api.plan_windows(lambda a, b: c.search(tag, lic, a, b, per_page=1).total, 0, 2**40,
                                    server.result_cap):
        for page in range(1, -(-n // 10) + 1):
            windowed |= {p.id for p in c.search(tag, lic, a, b, page=page).photos}
    assert windowed == {p.id for p in server.photos if normalize_tag(tag) in p.tags}


def test_path_trick_ids_are_refused():
    photos = catalog(20)
    with local_server.LocalFlickr(photos, api_key="k", faults=local_server.Faults(evil_ids=True)) as s:
        res = api.FlickrClient("k", fast_recipe(), api_url=s.api_url).search("people", [], 0, 2**40)
    assert all(api.valid_photo_id(p.id) for p in res.photos)
    refused = {raw for raw, _ in res.invalid}
    assert {repr(e) for e in local_server.EVIL_IDS} <= refused
    for bad in ("../x", "..", "1/2", "", "12a", "1" * 21, 12):
        assert not api.valid_photo_id(bad)


def test_429_retry_after_is_honoured_and_5xx_retried():
    faults = local_server.Faults(api_429=1, api_500=1, api_unavailable=1, retry_after_s=0.3)
    with local_server.LocalFlickr(catalog(20), api_key="k", faults=faults) as s:
        c = api.FlickrClient("k", fast_recipe(backoff_s=0.01), api_url=s.api_url)
        res = c.search("people", [], 0, 2**40)
        t = s.times["api"]
    assert res.total > 0 and len(t) == 4
    assert t[1] - t[0] >= 0.29  # waited for Retry-After, not the 0.01 s backoff


def test_api_gives_up_after_max_tries_without_the_key_in_the_message():
    key = "SECRET-KEY-abc123"
    faults = local_server.Faults(api_500=100)
    with local_server.LocalFlickr(catalog(5), api_key=key, faults=faults) as s:
        c = api.FlickrClient(key, fast_recipe(max_tries=3), api_url=s.api_url)
        with pytest.raises(api.FlickrAPIError) as e:
            c.search("people", [], 0, 2**40)
        assert s.hits["api"] == 3
    assert "gave up after 3 tries" in str(e.value) and "HTTP 500" in str(e.value)
    assert key not in str(e.value) and key not in repr(e.value) and e.value.__cause__ is None


def test_wrong_key_is_flickr_error_100(server):
    c = api.FlickrClient("wrong-key-XYZ", fast_recipe(), api_url=server.api_url)
    with pytest.raises(api.FlickrAPIError, match="Flickr error 100") as e:
        c.search("people", [], 0, 2**40)
    assert e.value.code == 100 and "wrong-key-XYZ" not in str(e.value)


def test_key_only_from_the_environment():
    with pytest.raises(api.MissingAPIKey, match="FLICKR_API_KEY is not set"):
        api.FlickrClient.from_env(env={})
    with pytest.raises(api.MissingAPIKey):
        api.FlickrClient.from_env(env={"FLICKR_API_KEY": "  "})
    c = api.FlickrClient.from_env(env={"FLICKR_API_KEY": "k-123456"})
    assert "k-123456" not in repr(c) and "k-123456" not in str(vars(c).get("api_key", ""))
    assert c.redact("echo k-123456 echo") == "echo <hidden> echo"


# ---- transport -----------------------------------------------------------------------------------
def test_backoff_is_exponential_with_full_jitter_and_honours_retry_after():
    pol = transport.RetryPolicy(max_tries=5, backoff_s=1.0, backoff_max_s=8.0)
    rng = random.Random(1)
    for attempt, cap in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (6, 8.0)]:
        d = [transport.backoff_delay(attempt, pol, rng) for _ in range(400)]
        assert 0 <= min(d) and max(d) <= cap and max(d) > 0.8 * cap
    assert transport.backoff_delay(0, pol, rng, retry_after=30.0) == 30.0


def test_with_retries_gives_up_and_does_not_retry_permanent_errors():
    pol = transport.RetryPolicy(max_tries=3, backoff_s=0.0)
    calls = []

    def flaky():
        calls.append(1)
        raise transport.TransientError("HTTP 503")

    with pytest.raises(transport.GaveUp) as e:
        transport.with_retries(flaky, pol, sleep=lambda s: None)
    assert len(calls) == 3 and e.value.tries == 3 and e.value.reason == "HTTP 503"

    def broken():
        calls.append(1)
        raise transport.PermanentError("HTTP 404")

    calls.clear()
    with pytest.raises(transport.PermanentError):
        transport.with_retries(broken, pol, sleep=lambda s: None)
    assert len(calls) == 1
    seq = iter([transport.TransientError("x"), "ok"])

    def second():
        v = next(seq)
        if isinstance(v, Exception):
            raise v
        return v

    assert transport.with_retries(second, pol, sleep=lambda s: None) == ("ok", 2)


def test_an_invalid_body_is_retried_and_final_only_when_it_stays_invalid():
    pol = transport.RetryPolicy(max_tries=3, backoff_s=0.0)
    assert issubclass(transport.InvalidBody, transport.TransientError)
    always = lambda: (_ for _ in ()).throw(transport.InvalidBody("text/html is not an image type"))  # noqa: E731
    with pytest.raises(transport.GaveUp) as e:
        transport.with_retries(always, pol, sleep=lambda s: None)
    assert e.value.tries == 3 and e.value.invalid_only
    seq = iter([transport.InvalidBody("html"), transport.TransientError("HTTP 503"), transport.InvalidBody("html")])
    with pytest.raises(transport.GaveUp) as e:
        transport.with_retries(lambda: (_ for _ in ()).throw(next(seq)), pol, sleep=lambda s: None)
    assert not e.value.invalid_only, "a 5xx among the tries: a passing fault, tried again by the next run"


@pytest.mark.parametrize("status, permanent", [(404, True), (410, True), (403, False), (400, False),
                                               (500, False), (503, False), (429, False)])
def test_only_gone_statuses_are_permanent(status, permanent):
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        with pytest.raises(transport.PermanentError if permanent else transport.TransientError,
                           match=f"HTTP {status}"):
            transport.open_url(f"http://127.0.0.1:{server.server_address[1]}/x", 5.0, "photo 1")
    finally:
        thread.join(5)
        server.server_close()


def test_parse_retry_after():
    assert transport.parse_retry_after("7") == 7.0
    assert transport.parse_retry_after(None) is None and transport.parse_retry_after("soon") is None
    assert 0 <= transport.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_image_magic():
    assert transport.image_kind(b"\xff\xd8\xff\xe0") == "jpeg"
    assert transport.image_kind(b"\x89PNG\r\n\x1a\nxxxx") == "png"
    assert transport.image_kind(b"<!DOCTYPE html>") is None
