"""The face-size explorer's data (what the browser draws from) and its HTML."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from facelib import explorer, stats


def _decode(rle):
    out = []
    for v in rle:
        out.extend([0] * -v if v < 0 else [v])
    return np.array(out)


@pytest.fixture()
def faces() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 400
    photo = rng.integers(0, 150, n)
    tagsets = [["people"], ["smile", "people"], ["portrait"], ["smile"]]
    return pd.DataFrame({
        "face_w": rng.lognormal(3.3, 0.8, n), "face_h": rng.lognormal(3.5, 0.8, n),
        "photo_id": photo.astype(str), "tags": [tagsets[p % 4] for p in photo],
        "license_name": np.where(photo % 3 == 0, "CC0", "CC BY 2.0"), "image_w": 500, "image_h": 375,
    })


def _cube(data, measure, kind):
    e = data["measures"][measure][kind]
    shape = (len(data["groups"]), len(data["licences"]), len(data["fpp"]), len(e["edges"]) - 1)
    return _decode(e["counts"]).reshape(shape), np.array(e["edges"])


def test_counts_match_a_direct_histogram_for_every_filter(faces):
    data = explorer.explorer_data(faces, bin_width=8, bins_per_octave=4, top_tags=2)
    assert data["groups"] == ["all tags", "people", "smile"], "the 2 tags with most faces"
    assert data["licences"] == ["CC BY 2.0", "CC0"] and data["fpp"][0] == "1"
    assert set(data["measures"]) == {"sqrt_area", "width", "height", "ratio"}
    per_photo = faces.groupby("photo_id")["face_w"].transform("size").to_numpy()
    for measure in data["measures"]:
        s = stats.face_sizes(faces, measure)
        for kind in ("lin", "log"):
            cube, edges = _cube(data, measure, kind)
            assert cube.sum(axis=(1, 2, 3))[0] == len(faces)
            if kind == "log":
                np.testing.assert_allclose(np.diff(np.log2(edges)), 0.25, atol=1e-6)
            else:
                assert np.allclose(np.diff(edges), np.diff(edges)[0])
            for g, tag in enumerate(data["groups"]):
                for li, lic in enumerate(data["licences"]):
                    mask = faces.license_name.eq(lic).to_numpy().copy()
                    if g:
                        mask &= faces.tags.map(lambda t: tag in t).to_numpy()
                    for fi, (_, lo, hi) in enumerate(explorer.FPP_CLASSES):
                        m = mask & (per_photo >= lo) & (per_photo <= hi)
                        want = np.histogram(np.clip(s[m], edges[0], edges[-1] * (1 - 1e-12)), edges)[0]
                        np.testing.assert_array_equal(cube[g, li, fi], want, err_msg=f"{measure} {kind} {tag} {lic}")


def test_without_optional_columns(faces):
    data = explorer.explorer_data(faces[["face_w", "face_h"]])
    assert data["groups"] == ["all tags"] and data["licences"] == ["all licences"] and data["fpp"] == ["any"]
    assert "ratio" not in data["measures"]
    with pytest.raises(ValueError, match="no faces"):
        explorer.explorer_data(faces.iloc[:0])


def test_tags_as_arrow_match_tags_as_lists(faces):
    import pyarrow as pa

    a = explorer.explorer_data(faces)
    b = explorer.explorer_data(faces.drop(columns="tags"), tags=pa.array(faces["tags"].tolist()))
    assert a == b


def test_html_embeds_plotly_once_per_live_kernel_never_in_the_book(faces, monkeypatch, tmp_path):
    ex = explorer.face_size_explorer(faces, title="demo")
    monkeypatch.setenv("FACELIB_BOOK", "1")
    book_html = ex.to_html()
    assert "facelibExplorer(" in book_html and len(book_html) < 200_000 and "cdn" not in book_html.lower()
    payload = book_html.split('type="application/json"', 1)[1].split(">", 1)[1].split("</script>", 1)[0]
    assert json.loads(payload)["faces"] == len(faces)
    monkeypatch.delenv("FACELIB_BOOK")
    monkeypatch.setattr(explorer, "_SENT_PLOTLY", False)
    first, second = ex.to_html(), ex.to_html()
    assert len(first) > 1_000_000 and "if (!window.Plotly)" in first, "plotly.js comes with the first one"
    assert len(second) < 200_000
    page = ex.write_html(tmp_path / "e.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and len(page) > 1_000_000
    assert ", 460);" in book_html, "the height is set in the figure (layout.height)"
