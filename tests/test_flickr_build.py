"""Flickr-Face build: a crawl of the loopback server through the preprocessing pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from facelib import cli, stats
from facelib.flickr import build, local_server
from facelib.flickr import crawl as fc

from flickr_fixtures import catalog, client


def _iou(a, b) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    out = tmp_path_factory.mktemp("crawl")
    photos = catalog(40, seed=11)
    with local_server.LocalFlickr(photos, api_key="k") as s:
        fc.crawl(out, client(s), tags=["people", "portrait"], max_photos=14, progress=False)
    return out


def test_build_joins_every_face_with_its_photo(crawled, tmp_path):
    summary = build.build_dataset(crawled, tmp_path, progress=False)
    ds = build.read_dataset(tmp_path)
    photos = fc.photos_table(crawled).set_index("photo_id")
    assert summary.photos == (photos.status == "done").sum() == 14
    assert len(ds) == summary.faces > 0 and summary.photos_with_faces == ds.photo_id.nunique()
    for col in build.ATTRIBUTION_COLUMNS:
        assert col in ds and ds[col].notna().all(), col
    matched = 0
    for _, face in ds.iterrows():
        p = photos.loc[face.photo_id]
        assert face.file == p.file and face.owner == p.owner and face.license == p.license
        assert list(face.tags) == list(p.tags)
        _, truth = local_server.render_photo(face.photo_id)
        box = (face.x1, face.y1, face.x2, face.y2)
        matched += max((_iou(box, t) for t in truth), default=0.0) > 0.5
    assert matched >= 0.9 * len(ds), "faces are found where the server put them"
    files = __import__("pandas").read_parquet(tmp_path / "files.parquet")
    assert len(files) == 14 and set(files.file) == set(photos.file)
    # rerun: nothing new, same dataset
    again = build.build_dataset(crawled, tmp_path, progress=False)
    assert again.preprocess.files == 0 and len(build.read_dataset(tmp_path)) == len(ds)


def test_build_and_stats_from_the_command_line(crawled, tmp_path, capsys):
    assert cli.main(["flickr", "build", str(crawled), str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Flickr-Face:" in out
    html = tmp_path / "sizes.html"
    assert cli.main(["stats", str(tmp_path / build.DATASET), "--html", str(html)]) == 0
    text = capsys.readouterr().out
    n = len(build.read_dataset(tmp_path))
    assert f"{n:,} faces" in text and "people" in text and "CC BY" in text
    assert html.stat().st_size > 1_000_000  # plotly.js embedded
    assert cli.main(["stats", str(tmp_path / "missing.parquet")]) == 2
    assert "manifest not found" in capsys.readouterr().err


def test_size_histogram_of_the_build_matches_numpy(crawled, tmp_path):
    build.build_dataset(crawled, tmp_path, progress=False)
    faces = stats.load_faces(tmp_path / build.DATASET)
    s = stats.face_sizes(faces, "width")
    counts, edges = stats.size_histogram(s, 8.0)
    assert counts.sum() == len(s)
    np.testing.assert_array_equal(counts, np.histogram(s, edges)[0])
