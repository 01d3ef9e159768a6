"""The page notebooks/01_data_curation.py runs in the demo profile (slow: a kernel starts)."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_data_curation_page_runs_in_demo_profile(repo_root, tmp_path, monkeypatch):
    from facelib import book

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # the kernel's temporary folder

    page = next(p for p in book.pages(repo_root) if p.name == "01_data_curation")
    page = book.Page(page.name, page.source, tmp_path / "01_data_curation.ipynb")
    params = book.resolve_parameters(page, "demo", book.load_profile(repo_root, "demo").get(
        page.name, {}), {})
    book.execute_page(page, params, repo_root)
    assert not list(scratch.iterdir()), "the page removes its temporary folder"
    nb = json.loads(page.output.read_text())
    text = "\n".join(
        "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
        + "".join(o.get("data", {}).get("text/markdown", ""))
        for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
    )
    assert "faces written: 3" in text  # astronaut, camera, Grace Hopper
    assert "no face: 3" in text and "not an image: 1" in text and "truncated or corrupt: 1" in text
    assert "second run: 0 files processed, 8 skipped" in text
    # the figures of the section "Detection and cropping" (the page goes on with other sections)
    section, n_png = None, 0
    for c in nb["cells"]:
        src = "".join(c["source"])
        if c["cell_type"] == "markdown" and src.startswith("## "):
            section = src.splitlines()[0]
        elif c["cell_type"] == "code" and section == "## Detection and cropping":
            n_png += sum("image/png" in o.get("data", {}) for o in c.get("outputs", []))
    assert n_png == 3  # detections, crops, aligned faces
