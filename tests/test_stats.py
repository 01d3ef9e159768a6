"""Face-size statistics and the interactive figures (supplement Fig. 1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from facelib import stats, viz


@pytest.fixture()
def faces() -> pd.DataFrame:
    return pd.DataFrame({
        "file": ["p1", "p1", "p2", "p3", "p3", "p3"],
        "photo_id": ["1", "1", "2", "3", "3", "3"],
        "face_w": [10.0, 40.0, 9.0, 100.0, 16.0, 24.0],
        "face_h": [10.0, 10.0, 16.0, 100.0, 16.0, 30.0],
        "tags": [["people"], ["people"], ["people", "smile"], ["smile"], ["smile"], ["smile"]],
        "license": [4, 4, 9, 4, 4, 4],
        "license_name": ["CC BY 2.0", "CC BY 2.0", "CC0", "CC BY 2.0", "CC BY 2.0", "CC BY 2.0"],
    })


def test_measures(faces):
    np.testing.assert_allclose(stats.face_sizes(faces, "sqrt_area"), [10, 20, 12, 100, 16, np.sqrt(720)])
    np.testing.assert_array_equal(stats.face_sizes(faces, "width"), faces.face_w)
    np.testing.assert_array_equal(stats.face_sizes(faces, "height"), faces.face_h)
    np.testing.assert_array_equal(stats.face_sizes(faces, "max"), [10, 40, 16, 100, 16, 30])
    with pytest.raises(ValueError, match="measure must be one of"):
        stats.face_sizes(faces, "area")


def test_histogram_matches_numpy_on_random_sizes():
    rng = np.random.default_rng(0)
    s = rng.lognormal(3.5, 0.8, 100_000)
    counts, edges = stats.size_histogram(s, 8.0)
    assert edges[0] == 0 and np.all(np.diff(edges) == 8.0) and edges[-1] >= s.max()
    np.testing.assert_array_equal(counts, np.histogram(s, edges)[0])


def test_histogram_edges_and_bad_values():
    counts, edges = stats.size_histogram(np.array([0.0, 7.99, 8.0, 16.0, np.nan, -3.0]), 8.0)
    assert edges.tolist() == [0, 8, 16, 24] and counts.tolist() == [2, 1, 1]
    counts, edges = stats.size_histogram(np.array([1.0, 50.0, 500.0]), 10.0, max_size=40)
    assert edges[-1] == 40 and counts.tolist() == [1, 0, 0, 2], "larger sizes go to the last bin"
    assert stats.size_histogram(np.array([]), 8.0)[0].tolist() == [0]
    with pytest.raises(ValueError, match="bin_width"):
        stats.size_histogram(np.ones(3), 0)


def test_counts(faces):
    tags = stats.tag_counts(faces)
    assert tags.loc["smile"].tolist() == [4, 2] and tags.loc["people"].tolist() == [3, 2]
    assert tags.index[0] == "smile"
    lic = stats.license_counts(faces)
    assert lic.loc[(4, "CC BY 2.0")].tolist() == [5, 2] and lic.loc[(9, "CC0")].tolist() == [1, 1]
    names_only = stats.license_counts(faces.drop(columns="license"))
    assert names_only.loc["CC0"].tolist() == [1, 1]
    files = pd.DataFrame({"file": ["p1", "p2", "p3", "p4", "p5"]})
    per = stats.faces_per_photo(faces, files)
    assert per.to_dict() == {0: 2, 1: 1, 2: 1, 3: 1}
    assert stats.faces_per_photo(faces).to_dict() == {1: 1, 2: 1, 3: 1}
    summ = stats.size_summary(faces)
    assert summ.loc["width", "faces"] == 6 and summ.loc["width", "max"] == 100


def test_load_faces_reads_columns_and_names_missing_ones(faces, tmp_path):
    path = tmp_path / "m.parquet"
    faces.to_parquet(path)
    got = stats.load_faces(path)
    assert list(got.columns) == ["face_w", "face_h"] and len(got) == 6
    with pytest.raises(KeyError, match="m.parquet: no column.*'score'"):
        stats.load_faces(path, ["face_w", "score"])
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        stats.load_faces(tmp_path / "nope.parquet")


def test_ratio_measure_needs_the_image_size(faces):
    with pytest.raises(KeyError, match="image_w"):
        stats.face_sizes(faces, "ratio")
    sized = faces.assign(image_w=100, image_h=400)
    np.testing.assert_allclose(stats.face_sizes(sized, "ratio"), stats.face_sizes(faces, "sqrt_area") / 200)
    assert "ratio" not in stats.size_summary(faces).index and "ratio" in stats.size_summary(sized).index


def test_filters(faces):
    assert len(stats.filter_faces(faces)) == 6
    assert stats.filter_faces(faces, tags=["people"]).index.tolist() == [0, 1, 2]
    assert stats.filter_faces(faces, tags=["people", "smile"]).index.tolist() == [0, 1, 2, 3, 4, 5]
    assert stats.filter_faces(faces, licenses=["CC0"]).index.tolist() == [2]
    assert stats.filter_faces(faces, licenses=["9"]).index.tolist() == [2], "a Flickr licence id works too"
    assert stats.filter_faces(faces, faces_per_photo=["1"]).index.tolist() == [2]
    assert stats.filter_faces(faces, faces_per_photo=["2-2", "3+"]).index.tolist() == [0, 1, 3, 4, 5]
    assert stats.filter_faces(faces, min_size=12, max_size=100).index.tolist() == [1, 2, 4, 5]
    assert stats.filter_faces(faces, tags=["smile"], min_size=20, measure="width").index.tolist() == [3, 5]
    with pytest.raises(ValueError, match="N-M"):
        stats.filter_faces(faces, faces_per_photo=["two"])
    with pytest.raises(KeyError, match="tags"):
        stats.filter_faces(faces.drop(columns="tags"), tags=["x"])


def test_log_histogram_has_log_spaced_edges():
    rng = np.random.default_rng(1)
    s = rng.lognormal(3, 1, 10_000)
    counts, edges = stats.log_histogram(s, 4)
    np.testing.assert_allclose(np.diff(np.log2(edges)), 0.25)
    assert counts.sum() == len(s) and edges[0] <= s.min() and edges[-1] > s.max()
    np.testing.assert_array_equal(counts, np.histogram(s, edges)[0])


def test_cli_filters_and_html(faces, tmp_path, capsys):
    from facelib import cli

    path = tmp_path / "m.parquet"
    faces.assign(image_w=500, image_h=375).to_parquet(path)
    assert cli.main(["stats", str(path), "--tag", "smile", "--min-size", "15", "--log-bins", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("3 faces in") and "(3 dropped by the filters)" in out
    html = tmp_path / "x.html"
    assert cli.main(["stats", str(path), "--license", "CC BY 2.0", "--html", str(html)]) == 0
    assert "explorer written to" in capsys.readouterr().out
    text = html.read_text()
    assert "facelibExplorer(" in text and len(text) > 1_000_000, "plotly.js embedded"
    assert cli.main(["stats", str(path), "--faces-per-photo", "lots"]) == 2
    assert "N-M" in capsys.readouterr().err
