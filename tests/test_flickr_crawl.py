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
    return df.drop(columns=["tries", "runs", "url"]).sort_values("photo_id").reset_index(drop=True)


FAULTY = list(local_server.FAULT_KINDS)  # one photo each: transient ones clear after 2 requests
LASTING = ["html", "corrupt", "500"]  # one more photo each, whose fault never clears


def _faults(photos, lasting=LASTING) -> tuple[local_server.Faults, dict[str, str]]:
    keep = reusable(photos)
    kinds = {p.id: k for p, k in zip(keep, FAULTY)}
    last = {p.id: k for p, k in zip(keep[len(FAULTY):], lasting or ())}
    return local_server.Faults(photo={**kinds, **last}, lasting=tuple(last), duplicate_pages=True, evil_ids=True,
                               slow_s=2.5, hang_s=1.5, retry_after_s=0.1, api_429=1, api_500=1), {**kinds, **last}


def _agree(out: Path) -> None:
    """The table and the folder agree: every done photo's file is in place with its size and
    SHA-256, no other file, no temporary file, and photos.parquet is the database's table."""
    df = fc.photos_table(out)
    done = df[df.status == "done"]
    assert df.photo_id.is_unique
    on_disk = {p.relative_to(out).as_posix(): p for p in (out / "images").rglob("*") if p.is_file()}
    assert set(on_disk) == set(done.file), "a file for every done photo and nothing else"
    for row in done.itertuples():
        data = on_disk[row.file].read_bytes()
        assert len(data) == row.bytes and hashlib.sha256(data).hexdigest() == row.sha256
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != fc.LOCK]
    saved = pd.read_parquet(out / fc.PHOTOS)
    assert saved[["photo_id", "status", "file"]].equals(df[["photo_id", "status", "file"]])


def test_crawl_with_every_fault(tmp_path):
    photos = catalog(60)
    faults, kinds = _faults(photos)
    with local_server.LocalFlickr(photos, api_key="k", faults=faults, result_cap=30) as s:
        s.prerender()
        summary = fc.crawl(tmp_path, client(s, timeout_s=1.0), tags=TAGS4, progress=False, seed=0)
        hits = {pid: s.hits[f"{pid}_{s.by_id[pid].secret}.jpg"] for pid in kinds}
        df = fc.photos_table(tmp_path).set_index("photo_id")
        expected = {p.id for p in reusable(photos)}
        assert set(df.index) == expected, "every reusable photo once; other licences and bad ids refused"
        assert summary.invalid_records > 0
        for pid, kind in kinds.items():
            row = df.loc[pid]
            if pid in faults.lasting:  # never cleared: a final failure after every try, or a transient one
                assert row.status == "failed" and row.tries == 4 and hits[pid] == 4, (kind, row.reason)
                assert row.retryable == (kind == "500") and row.runs == 1, kind
            elif kind in local_server.TRANSIENT:  # html, wrong type, corrupt too: retried like a 5xx
                assert row.status == "done" and row.tries == faults.transient_times + 1, (kind, row.reason)
            else:
                assert row.status == "failed" and row.tries == 1 and not row.retryable, kind
        assert df.loc[_id(kinds, "404")].reason == f"photo {_id(kinds, '404')}: HTTP 404"
        assert df.loc[_id(kinds, "410")].reason == f"photo {_id(kinds, '410')}: HTTP 410"
        assert "redirected to a host that is not allowed ('localhost')" in df.loc[_id(kinds, "redirect_away")].reason
        lasting = {k: pid for pid, k in kinds.items() if pid in faults.lasting}
        assert "not an image type" in df.loc[lasting["html"]].reason
        assert "does not decode" in df.loc[lasting["corrupt"]].reason
        assert df.loc[lasting["html"]].reason.endswith("(invalid every time: final)")
        assert df.loc[lasting["500"]].reason == f"gave up after 4 tries: photo {lasting['500']}: HTTP 500"
        t429 = s.times[f"{_id(kinds, '429')}_{s.by_id[_id(kinds, '429')].secret}.jpg"]
        assert len(t429) == 3 and min(b - a for a, b in zip(t429, t429[1:])) >= faults.retry_after_s - 0.01, \
            "Retry-After honoured between tries (the backoff alone would be shorter)"
        assert (df.status == "done").sum() == len(expected) - 6
        assert summary.total_retryable == 1 and summary.total_failed == 6
        # files: named from the id only, complete, identical to what the server serves
        for pid, row in df[df.status == "done"].iterrows():
            assert row.file == f"images/{pid[-2:]}/{pid}.jpg"
            data = (tmp_path / row.file).read_bytes()
            assert data == s.photo_bytes(pid) and hashlib.sha256(data).hexdigest() == row.sha256
        assert len(_files(tmp_path)) == len(expected) - 6, "no temporary or extra files"
        assert not list(tmp_path.rglob("*evil*")) and not (tmp_path.parent / "evil").exists()
        _agree(tmp_path)
        # every tag that found a photo is recorded
        for p in reusable(photos):
            assert sorted(df.loc[p.id].tags) == sorted(t for t in TAGS4 if t.replace(" ", "") in p.tags)
        # the next run tries again the transient failure only, until max_download_runs runs tried it
        c = client(s, timeout_s=1.0, max_download_runs=2)
        again = fc.crawl(tmp_path, c, tags=TAGS4, progress=False, seed=0)
        assert again.requeued == 1 and again.total_retryable == 0
        last = fc.crawl(tmp_path, c, tags=TAGS4, progress=False, seed=0)
        assert last.requeued == 0 and again.downloaded == last.downloaded == 0
        after = {pid: s.hits[f"{pid}_{s.by_id[pid].secret}.jpg"] for pid in kinds}
    assert after == {**hits, lasting["500"]: 8}, "final failures are not tried again; the 5xx one by 2 runs"
    assert fc.photos_table(tmp_path).set_index("photo_id").loc[lasting["500"]].runs == 2
    _agree(tmp_path)


def test_a_photo_that_failed_transiently_is_downloaded_by_the_next_run(tmp_path):
    photos = catalog(30)
    target = reusable(photos)[0].id
    faults = local_server.Faults(photo={target: "503"}, transient_times=5)
    with local_server.LocalFlickr(photos, api_key="k", faults=faults) as s:
        first = fc.crawl(tmp_path, client(s, max_tries=3), tags=["people", "smile"], progress=False)
        row = fc.photos_table(tmp_path).set_index("photo_id").loc[target]
        assert row.status == "failed" and row.retryable and first.total_retryable == 1
        second = fc.crawl(tmp_path, client(s, max_tries=3), tags=["people", "smile"], progress=False)
    row = fc.photos_table(tmp_path).set_index("photo_id").loc[target]
    assert second.requeued == 1 and row.status == "done" and row.runs == 2 and row.tries == 6
    assert second.total_retryable == second.total_pending == 0
    _agree(tmp_path)


def test_every_fault_kind_at_a_high_rate_converges_to_every_reachable_photo(tmp_path):
    photos = catalog(60, seed=5)
    faults = local_server.Faults(rate=0.6, gone_rate=0.1, api_rate=0.2, seed=11, slow_s=1.5, hang_s=1.5,
                                 retry_after_s=0.05, duplicate_pages=True, evil_ids=True)
    with local_server.LocalFlickr(photos, api_key="k", faults=faults, result_cap=30) as s:
        s.prerender()
        c = client(s, timeout_s=1.0, max_tries=6)
        runs = 0
        while True:
            summary = fc.crawl(tmp_path, c, tags=TAGS4, progress=False, seed=runs)
            runs += 1
            if not (summary.total_pending or summary.total_retryable) or runs == c.recipe.max_download_runs:
                break
        served = dict(s.served)
        df = fc.photos_table(tmp_path).set_index("photo_id")
        gone = {p.id for p in reusable(photos) if faults.gone(p.id)}
        reachable = {p.id for p in reusable(photos)} - gone
        assert set(df.index) == reachable | gone and 0 < len(gone) < len(reachable)
        assert set(df.index[df.status == "done"]) == reachable, df[df.status != "done"].reason.to_dict()
        for pid in reachable:
            assert (tmp_path / df.loc[pid].file).read_bytes() == s.photo_bytes(pid)
        for pid in gone:
            assert df.loc[pid].status == "failed" and df.loc[pid].reason.endswith(f"HTTP {faults.gone(pid)}")
    assert set(local_server.RATE_KINDS) <= set(served), f"every fault kind was met: {served}"
    _agree(tmp_path)


def test_folder_and_database_agree_again_after_a_kill_at_any_point(tmp_path):
    """The states a kill can leave, made by hand: a file renamed into place but not recorded (and
    its photo failing when downloaded again: the issue's case), a recorded file deleted, a corrupt
    file in place, and temporary files of every kind."""
    import sqlite3
    photos = catalog(30)
    with local_server.LocalFlickr(photos, api_key="k") as s:
        fc.crawl(tmp_path, client(s), tags=["people", "smile"], progress=False)
        df = fc.photos_table(tmp_path).set_index("photo_id")
        renamed, deleted, corrupt = list(df.index[:3])
        db = sqlite3.connect(tmp_path / fc.STATE)
        with db:
            for pid in (renamed, corrupt):
                db.execute("UPDATE photos SET status = 'pending', file = '', bytes = 0, sha256 = '' WHERE id = ?",
                           (pid,))
        db.close()
        (tmp_path / df.loc[deleted].file).unlink()
        (tmp_path / df.loc[corrupt].file).write_bytes(s.photo_bytes(corrupt)[:500])
        folder = (tmp_path / df.loc[renamed].file).parent
        temps = [folder / f".{renamed}.123.456.part", tmp_path / f".{fc.PHOTOS}.999.tmp"]
        for t in temps:
            t.write_bytes(b"partial")
        s.faults.photo[renamed] = "500"  # a second download of it would fail
        s.faults.lasting = (renamed,)
        before = s.hits.copy()
        summary = fc.crawl(tmp_path, client(s), tags=["people", "smile"], progress=False)
        fetched = {k for k in s.hits if s.hits[k] != before[k] and k != "api"}
    assert summary.removed_temp == 2 and not any(t.exists() for t in temps)
    assert summary.recovered == 1 and summary.redownload == 1 and summary.downloaded == 2
    assert fetched == {f"{pid}_{s.by_id[pid].secret}.jpg" for pid in (deleted, corrupt)}, "the renamed one is not"
    after = fc.photos_table(tmp_path).set_index("photo_id")
    assert (after.status == "done").all() and after.loc[renamed].sha256 == df.loc[renamed].sha256
    _agree(tmp_path)


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


def _kill_when(proc, state: Path, sql: str, target: int) -> bool:
    """SIGKILL ``proc`` once ``sql`` on its database reaches ``target``; False if it ended first."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if state.exists():
            try:
                with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1) as db:
                    if db.execute(sql).fetchone()[0] >= target:
                        break
            except sqlite3.OperationalError:
                pass  # tables not created yet
        time.sleep(0.01)
    alive = proc.poll() is None
    if alive:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return alive


@pytest.mark.slow
def test_sigkill_at_every_point_then_resume_equals_a_clean_crawl(tmp_path):
    """SIGKILL of the real command during the search, during the downloads, right after a rename
    (before its database update) and during the parquet write, against every per-photo fault and
    15 % drawn faults; the resumed folder is a clean crawl's, and table and folder agree."""
    photos = catalog(90, seed=3)
    faults, _ = _faults(photos, lasting=("html", "corrupt"))
    faults.latency_s = 0.12
    faults.slow_s, faults.hang_s = 0.5, 6.0
    faults.rate, faults.seed = 0.15, 3
    faults.kinds = tuple(k for k in local_server.RATE_KINDS if k not in ("slow", "hang"))  # 5 s timeouts
    key = "kill-test-key"
    with local_server.LocalFlickr(photos, api_key=key, faults=faults, result_cap=30) as s:
        s.prerender()
        done = cli_crawl(tmp_path / "clean", s, key)
        assert done.returncode == 0, done.stderr
    rng = random.Random(7)
    n_ok = len(reusable(photos))
    out = tmp_path / "killed"
    state = out / fc.STATE
    with local_server.LocalFlickr(photos, api_key=key, faults=faults, result_cap=30) as s:
        s.prerender()
        # from outside, at a random moment of the search, then of the downloads
        assert _kill_when(popen_crawl(out, s, key), state, "SELECT COUNT(*) FROM photos", rng.randint(5, n_ok // 2))
        assert _kill_when(popen_crawl(out, s, key), state, "SELECT COUNT(*) FROM photos WHERE status != 'pending'",
                          rng.randint(5, n_ok // 3))
        # from inside: right after the 3rd rename into place, before its database update ...
        cut = cli_crawl(out, s, key, env={fc.KILL_ENV: "rename:3"})
        assert cut.returncode == -signal.SIGKILL
        db = sqlite3.connect(state)
        n_done = db.execute("SELECT COUNT(*) FROM photos WHERE status = 'done'").fetchone()[0]
        db.close()
        assert len(_files(out)) > n_done, "a file in place that the database does not know of"
        # ... and with photos.parquet written to its temporary name, not yet renamed
        cut = cli_crawl(out, s, key, env={fc.KILL_ENV: "parquet:1"})
        assert cut.returncode == -signal.SIGKILL and list(out.glob(f".{fc.PHOTOS}.*"))
        final = cli_crawl(out, s, key)
        assert final.returncode == 0, final.stderr
    assert "temporary files removed" in final.stdout
    pd.testing.assert_frame_equal(_state(out), _state(tmp_path / "clean"))
    assert _files(out) == _files(tmp_path / "clean")
    _agree(out)


def test_the_api_key_appears_nowhere(tmp_path, monkeypatch, capsys):
    """A crawl through the command line (progress bars on, every fault, an error path) with a
    recognisable fake key: the key is in no output, no file, no exception."""
    from facelib import cli

    key = "FAKE-FLICKR-KEY-5b1d9e0c7a3f"
    photos = catalog(30)
    faults, _ = _faults(photos, lasting=False)
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
