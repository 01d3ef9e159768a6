"""The resumable crawl against the loopback server: faults, de-duplication, kill -9, secrets."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import time
from pathlib import Path

import pandas as pd
import pytest

from facelib.flickr import crawl as fc
from facelib.flickr import local_server

from flickr_fixtures import TAGS4, catalog, cli_crawl, client, popen_crawl, reusable


def _files(out: Path) -> dict[str, str]:
    """Every file under images/ (hidden ones included) -> sha256."""
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((out / "images").rglob("*")) if p.is_file()}


def _state(out: Path) -> pd.DataFrame:
    df = fc.photos_table(out)
    df["tags"] = df["tags"].apply(tuple)
    return df.drop(columns=["tries", "url"]).sort_values("photo_id").reset_index(drop=True)


FAULTY = ["429", "500", "slow", "reset", "truncated", "html", "wrong_type", "404", "huge", "redirect_away"]


def _faults(photos) -> tuple[local_server.Faults, dict[str, str]]:
    keep = reusable(photos)
    kinds = {keep[i].id: k for i, k in enumerate(FAULTY)}
    return local_server.Faults(photo=kinds, duplicate_pages=True, evil_ids=True, slow_s=2.5,
                               retry_after_s=0.1, api_429=1, api_500=1), kinds


def test_crawl_with_every_fault(tmp_path):
    photos = catalog(60)
    faults, kinds = _faults(photos)
    with local_server.LocalFlickr(photos, api_key="k", faults=faults, result_cap=30) as s:
        s.prerender()
        summary = fc.crawl(tmp_path, client(s, timeout_s=1.0), tags=TAGS4, progress=False, seed=0)
    df = fc.photos_table(tmp_path).set_index("photo_id")
    expected = {p.id for p in reusable(photos)}
    assert set(df.index) == expected, "every reusable photo once; other licences and bad ids refused"
    assert summary.invalid_records > 0
    for pid, kind in kinds.items():
        row = df.loc[pid]
        if kind in local_server.TRANSIENT:
            assert row.status == "done" and row.tries == faults.transient_times + 1, (kind, row.reason)
        else:
            assert row.status == "failed", kind
    assert "HTTP 404" in df.loc[_id(kinds, "404")].reason
    assert "not an image type" in df.loc[_id(kinds, "html")].reason
    assert "application/octet-stream" in df.loc[_id(kinds, "wrong_type")].reason
    assert "cap" in df.loc[_id(kinds, "huge")].reason
    assert "redirected to a host that is not allowed ('localhost')" in df.loc[_id(kinds, "redirect_away")].reason
    t429 = s.times[f"{_id(kinds, '429')}_{s.by_id[_id(kinds, '429')].secret}.jpg"]
    assert len(t429) == 3 and min(b - a for a, b in zip(t429, t429[1:])) >= faults.retry_after_s - 0.01, \
        "Retry-After honoured between tries (the backoff alone would be shorter)"
    assert (df.status == "done").sum() == len(expected) - 5
    # files: named from the id only, complete, identical to what the server serves
    for pid, row in df[df.status == "done"].iterrows():
        assert row.file == f"images/{pid[-2:]}/{pid}.jpg"
        data = (tmp_path / row.file).read_bytes()
        assert data == s.photo_bytes(pid) and hashlib.sha256(data).hexdigest() == row.sha256
    assert len(_files(tmp_path)) == len(expected) - 5, "no temporary or extra files"
    assert not list(tmp_path.rglob("*evil*")) and not (tmp_path.parent / "evil").exists()
    # every tag that found a photo is recorded
    for p in reusable(photos):
        assert sorted(df.loc[p.id].tags) == sorted(t for t in TAGS4 if t.replace(" ", "") in p.tags)
    saved = pd.read_parquet(tmp_path / fc.PHOTOS)
    assert len(saved) == len(expected)


def _id(kinds, kind):
    return next(p for p, k in kinds.items() if k == kind)


def test_gives_up_after_max_tries_with_the_reason(tmp_path):
    photos = catalog(30)
    target = reusable(photos)[0].id
    faults = local_server.Faults(photo={target: "500"}, transient_times=99)
    with local_server.LocalFlickr(photos, api_key="k", faults=faults) as s:
        fc.crawl(tmp_path, client(s, max_tries=3), tags=["people", "smile"], progress=False)
        hits = s.hits[f"{target}_{s.by_id[target].secret}.jpg"]
    row = fc.photos_table(tmp_path).set_index("photo_id").loc[target]
    assert row.status == "failed" and row.tries == 3 == hits
    assert row.reason == f"gave up after 3 tries: photo {target}: HTTP 500"


def test_dedup_across_tags_and_caps(tmp_path):
    photos = catalog(60)
    with local_server.LocalFlickr(photos, api_key="k", result_cap=30) as s:
        c = client(s)
        fc.crawl(tmp_path / "a", c, tags=TAGS4, max_per_tag=5, download=False, progress=False)
        fc.crawl(tmp_path / "b", c, tags=TAGS4, max_photos=12, download=False, progress=False)
    a = fc.photos_table(tmp_path / "a")
    per_tag = a.explode("tags").groupby("tags").size()
    assert (per_tag == 5).all() and len(per_tag) == 4
    assert len(a) == a.photo_id.nunique() < 20, "photos found by several tags are stored once"
    b = fc.photos_table(tmp_path / "b")
    assert len(b) == 12 and (b.status == "pending").all()


def test_rerun_with_other_settings_is_refused_and_more_tags_extend(tmp_path):
    photos = catalog(40)
    with local_server.LocalFlickr(photos, api_key="k") as s:
        c = client(s)
        fc.crawl(tmp_path, c, tags=["people"], progress=False)
        n1 = len(fc.photos_table(tmp_path))
        with pytest.raises(ValueError, match="other settings.*licenses"):
            fc.crawl(tmp_path, c, tags=["people"], licenses=[4], progress=False)
        calls = c.calls
        again = fc.crawl(tmp_path, c, tags=["people"], progress=False)
        assert c.calls == calls and again.downloaded == 0, "a finished crawl makes no request"
        fc.crawl(tmp_path, c, tags=["people", "smile"], progress=False)
    df = fc.photos_table(tmp_path)
    assert len(df) > n1 and (df.status == "done").all()


def test_bad_arguments(tmp_path):
    with local_server.LocalFlickr(catalog(5), api_key="k") as s:
        with pytest.raises(ValueError, match="unknown Flickr licence id"):
            fc.crawl(tmp_path, client(s), tags=["people"], licenses=[4, 99], progress=False)
        with pytest.raises(ValueError, match="max_photos"):
            fc.crawl(tmp_path, client(s), tags=["people"], max_photos=-1, progress=False)
    with pytest.raises(ValueError, match="refusing photo id"):
        fc.photo_path("../../x")


def test_photo_from_a_foreign_host_is_not_downloaded(tmp_path):
    with local_server.LocalFlickr(catalog(20), api_key="k") as s:
        fc.crawl(tmp_path, client(s), tags=["people"], photo_hosts=("staticflickr.com",), progress=False)
    df = fc.photos_table(tmp_path)
    assert len(df) and (df.status == "failed").all()
    assert df.reason.str.contains("URL host not allowed").all()
    assert not _files(tmp_path)


def test_one_crawl_per_folder(tmp_path):
    with fc._lock(tmp_path):
        with pytest.raises(RuntimeError, match="being crawled by another process"):
            with fc._lock(tmp_path):
                pass


@pytest.mark.slow
def test_kill_9_twice_then_resume_equals_a_clean_crawl(tmp_path):
    """Done-when of the issue: SIGKILL at random points, twice, and the result is a clean crawl's."""
    photos = catalog(90, seed=3)
    faults, _ = _faults(photos)
    faults.latency_s = 0.12
    faults.slow_s = 0.5
    key = "kill-test-key"
    with local_server.LocalFlickr(photos, api_key=key, faults=faults, result_cap=30) as s:
        s.prerender()
        done = cli_crawl(tmp_path / "clean", s, key)
        assert done.returncode == 0, done.stderr
    rng = random.Random(7)
    n_ok = len(reusable(photos))
    # kill points: once while searching (a random number of photos found), once while
    # downloading (a random number of photos stored)
    points = [("SELECT COUNT(*) FROM photos", rng.randint(5, n_ok // 2)),
              ("SELECT COUNT(*) FROM photos WHERE status != 'pending'", rng.randint(5, n_ok - 10))]
    killed = 0
    state = tmp_path / "killed" / fc.STATE
    with local_server.LocalFlickr(photos, api_key=key, faults=faults, result_cap=30) as s:
        s.prerender()
        for sql, target in points:
            proc = popen_crawl(tmp_path / "killed", s, key)
            deadline = time.monotonic() + 90
            while proc.poll() is None and time.monotonic() < deadline:
                if state.exists():
                    try:
                        with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1) as db:
                            if db.execute(sql).fetchone()[0] >= target:
                                break
                    except sqlite3.OperationalError:
                        pass  # tables not created yet
                time.sleep(0.01)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                killed += 1
            proc.wait()
        db = sqlite3.connect(state)
        pending = db.execute("SELECT COUNT(*) FROM photos WHERE status = 'pending'").fetchone()[0]
        db.close()
        final = cli_crawl(tmp_path / "killed", s, key)
        assert final.returncode == 0, final.stderr
    assert killed == 2 and pending > 0, "the kills landed before the crawl finished"
    pd.testing.assert_frame_equal(_state(tmp_path / "killed"), _state(tmp_path / "clean"))
    assert _files(tmp_path / "killed") == _files(tmp_path / "clean")


def test_the_api_key_appears_nowhere(tmp_path, monkeypatch, capsys):
    """A crawl through the command line (progress bars on, every fault, an error path) with a
    recognisable fake key: the key is in no output, no file, no exception."""
    from facelib import cli

    key = "FAKE-FLICKR-KEY-5b1d9e0c7a3f"
    photos = catalog(30)
    faults, _ = _faults(photos)
    faults.slow_s = 0.5
    base = ["flickr", "crawl", "--profile", "demo", "--per-page", "10", "--result-cap", "30",
            "--concurrency", "4", "--tags", *TAGS4, "--api-url"]
    monkeypatch.setenv("FLICKR_API_KEY", key)
    with local_server.LocalFlickr(photos, api_key=key, faults=faults, result_cap=30) as s:
        assert cli.main(base + [s.api_url, str(tmp_path / "ok")]) == 0
        assert cli.main(base + [s.api_url, str(tmp_path / "ok"), "--retry-failed"]) == 0
        monkeypatch.setenv("FLICKR_API_KEY", key + "-wrong")  # the error path
        assert cli.main(base + [s.api_url, str(tmp_path / "bad")]) == 2
        monkeypatch.delenv("FLICKR_API_KEY")
        assert cli.main(base + [s.api_url, str(tmp_path / "none")]) == 2
    out = capsys.readouterr()
    assert "Flickr error 100" in out.err and "FLICKR_API_KEY is not set" in out.err
    assert "download" in out.err and "search" in out.err  # the progress bars ran
    assert key not in out.out and key not in out.err
    with pytest.raises(SystemExit):
        cli.main(["flickr", "crawl", "--api-key", key, str(tmp_path / "x")])  # no such option
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == fc.STATE for p in files) and len(files) > 10
    for p in files:
        assert key.encode() not in p.read_bytes(), p


class _Interrupt(BaseException):
    pass


def test_interrupted_crawl_resumes_to_a_clean_crawl(tmp_path, monkeypatch):
    """In-process version of the kill test: stop during the search, then during the downloads."""
    photos = catalog(60, seed=5)
    faults, _ = _faults(photos)
    faults.slow_s = 0.3
    with local_server.LocalFlickr(photos, api_key="k", faults=faults, result_cap=30) as s:
        s.prerender()
        fc.crawl(tmp_path / "clean", client(s), tags=TAGS4, progress=False)
        c = client(s)
        real_search, real_fetch = c.search, fc._Downloader.fetch
        calls = {"n": 0}

        def search_then_stop(*a, **k):
            calls["n"] += 1
            if calls["n"] == 9:
                raise _Interrupt()
            return real_search(*a, **k)

        monkeypatch.setattr(c, "search", search_then_stop)
        with pytest.raises(_Interrupt):
            fc.crawl(tmp_path / "cut", c, tags=TAGS4, progress=False)
        monkeypatch.setattr(c, "search", real_search)
        n_fetch = {"n": 0}

        def fetch_then_stop(self, *a):
            n_fetch["n"] += 1
            if n_fetch["n"] == 12:
                raise _Interrupt()
            return real_fetch(self, *a)

        monkeypatch.setattr(fc._Downloader, "fetch", fetch_then_stop)
        with pytest.raises(_Interrupt):
            fc.crawl(tmp_path / "cut", c, tags=TAGS4, progress=False)
        partial = fc.photos_table(tmp_path / "cut")
        assert 0 < (partial.status != "pending").sum() < len(partial)
        monkeypatch.setattr(fc._Downloader, "fetch", real_fetch)
        fc.crawl(tmp_path / "cut", c, tags=TAGS4, progress=False)
    pd.testing.assert_frame_equal(_state(tmp_path / "cut"), _state(tmp_path / "clean"))
    assert _files(tmp_path / "cut") == _files(tmp_path / "clean")


def test_global_download_rate_limit(tmp_path):
    photos = catalog(40)
    with local_server.LocalFlickr(photos, api_key="k") as s:
        s.prerender()
        fc.crawl(tmp_path, client(s, download_rate=20.0, concurrency=8), tags=["people"], max_photos=11,
                 licenses=list(range(17)),
                 progress=False)
        times = sorted(t for k, v in s.times.items() if k != "api" for t in v)
    assert len(times) == 11
    assert times[-1] - times[0] >= 10 / 20.0 - 0.02, "11 requests at 20/s span at least 0.5 s"


def test_empty_crawl(tmp_path):
    with local_server.LocalFlickr(catalog(10), api_key="k") as s:
        summary = fc.crawl(tmp_path, client(s), tags=["no such tag"], progress=False)
    assert summary.total_photos == 0 and len(fc.photos_table(tmp_path)) == 0
    assert len(pd.read_parquet(tmp_path / fc.PHOTOS)) == 0
