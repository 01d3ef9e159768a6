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


def test_interactive_figure_controls(faces):
    f = stats.face_size_figure(faces, bin_width=8, top_tags=5, thresholds=(0, 16, 32))
    assert isinstance(f, viz.PlotlyFigure)
    fig = f.fig
    groups = ["all tags", "smile", "people"]
    assert len(fig.data) == 2 * len(groups)
    assert [t.visible for t in fig.data] == [True, True, False, False, False, False]
    measure, tag, axes = fig.layout.updatemenus
    assert [b.label for b in measure.buttons] == list(stats.MEASURES.values())
    n_group = {"all tags": 6, "smile": 4, "people": 3}
    for b, m in zip(measure.buttons, stats.MEASURES):
        ys = b.args[0]["y"]
        for gi, g in enumerate(groups):
            hist, share = np.array(ys[2 * gi]), np.array(ys[2 * gi + 1])
            assert hist.sum() == n_group[g]
            assert share[0] == pytest.approx(1.0) and np.all(np.diff(share) <= 1e-12)
        all_counts = np.array(ys[0])
        expected, _ = stats.size_histogram(stats.face_sizes(faces, m), 8, float(fig.data[0].x[-1]) + 8)
        np.testing.assert_array_equal(all_counts, expected)
    assert [b.args[0]["visible"] for b in tag.buttons][1] == [False, False, True, True, False, False]
    assert tag.buttons[1].label == "smile (4)"
    assert {b.args[0]["yaxis.type"] for b in axes.buttons} == {"linear", "log"}
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["0", "16", "32"]
    assert steps[0].args[0]["shapes"] == [] and steps[2].args[0]["shapes"][0]["x1"] == 32
    html = f.to_html()
    assert "<div" in html and "Plotly.newPlot" in html and len(html) < 200_000, "plotly.js not embedded"


def test_figure_rejects_empty_and_bad_measure(faces):
    with pytest.raises(ValueError, match="no faces"):
        stats.face_size_figure(faces.iloc[:0])
    with pytest.raises(ValueError, match="measure"):
        stats.face_size_figure(faces, measure="diagonal")


def test_ipywidgets_explorer_recomputes(faces, monkeypatch):
    pytest.importorskip("ipywidgets")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    box = stats.face_size_explorer(faces)
    (measure, tag), (logy, min_size) = box.children[0].children, box.children[1].children
    info = box.children[2]
    assert "6 of 6 faces" in info.value
    min_size.value = 15
    assert "4 of 6 faces &gt;= 15 px" in info.value or "4 of 6 faces >= 15 px" in info.value
    tag.value = "people"
    assert "people" in info.value and "1 of 3 faces" in info.value
    measure.value = "max"  # 10, 40, 16
    assert "2 of 3 faces" in info.value
