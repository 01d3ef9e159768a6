"""The pages rerun with plain papermill, as the README shows, from any working directory.

Two routes: the ``.ipynb`` that ``facelib book`` writes (``book/_generated/NN_name.ipynb``),
or ``jupytext --to ipynb`` of the ``.py`` page. Slow: kernels start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from facelib import book

pytestmark = pytest.mark.slow
BIN = os.path.dirname(sys.executable)


def _glued(nb: dict, name: str) -> str:
    """The value a page glued under ``name`` (myst_nb.glue), as text."""
    for c in nb["cells"]:
        for o in c.get("outputs", []):
            if o.get("metadata", {}).get("scrapbook", {}).get("name") == name:
                return "".join(next(iter(o["data"].values())))
    raise AssertionError(f"nothing glued as {name!r}")


def _papermill(src, out, cwd, *params):
    env = dict(os.environ, TMPDIR=str(cwd))
    return subprocess.run([f"{BIN}/papermill", str(src), str(out), "-k", "python3", *params],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_jupytext_then_papermill_from_another_directory(repo_root, tmp_path):
    src = tmp_path / "00_recipes.ipynb"
    subprocess.run([f"{BIN}/jupytext", "--to", "ipynb", "--output", str(src),
                    str(repo_root / "notebooks" / "00_recipes.py")], check=True, capture_output=True)
    run = _papermill(src, tmp_path / "out.ipynb", tmp_path, "-p", "pretrain_images", "1000000")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "unknown parameter" not in run.stderr, "papermill sees every parameter of the page"
    nb = json.loads((tmp_path / "out.ipynb").read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and "pretrain_images = 1000000" in "".join(injected[0]["source"])
    assert _glued(nb, "iters_per_epoch") == str(1_000_000 // 4096), "computed with the injected value"


def test_papermill_on_the_notebook_facelib_book_wrote(repo_root, tmp_path, monkeypatch, capfd):
    import tempfile

    sockets = tmp_path / "sockets"
    sockets.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(sockets))  # where the kernel's IPC files go
    page = next(p for p in book.pages(repo_root) if p.name == "00_recipes")
    written = book.Page(page.name, page.source, tmp_path / "00_recipes.ipynb")
    book.execute_page(written, {"profile": "demo"}, repo_root)
    assert not list(sockets.iterdir()), "the kernel's IPC sockets are removed"
    err = capfd.readouterr().err  # the kernel writes to this process's stderr
    assert "without encryption" not in err and "KeyboardInterrupt" not in err, err[-2000:]
    assert "unknown parameter" not in err
    run = _papermill(written.output, tmp_path / "again.ipynb", tmp_path, "-p", "pretrain_images", "2000000",
                     "-p", "profile", "demo")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "unknown parameter" not in run.stderr
    nb = json.loads((tmp_path / "again.ipynb").read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1, "papermill replaced the injected cell of the first run"
    assert _glued(nb, "iters_per_epoch") == str(2_000_000 // 4096)
    assert not [c for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
