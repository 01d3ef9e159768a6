"""notebooks/02_flickr_face.py in the demo profile, with plain papermill from another folder:
runs end to end, labelled, no secret in it, the explorer and the detector's recall shown, and
nothing left in the temporary folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from flickr_fixtures import REPO

KEY = "FAKE-FLICKR-KEY-in-the-environment-91c2"


@pytest.mark.slow
def test_demo_page_runs_and_leaks_no_key(tmp_path):
    src = tmp_path / "02.ipynb"
    out = tmp_path / "02_out.ipynb"
    py = sys.executable
    subprocess.run([py, "-m", "jupytext", "--to", "ipynb", "--output", str(src),
                    str(REPO / "notebooks" / "02_flickr_face.py")], check=True, capture_output=True)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    # the key is present, and must not be used nor shown by the demo; TMPDIR shows what the page
    # leaves behind; the working directory is not notebooks/ (pages run from anywhere)
    env = dict(os.environ, FLICKR_API_KEY=KEY, TMPDIR=str(scratch))
    run = subprocess.run([py, "-m", "papermill", "-k", "python3", str(src), str(out), "-p", "profile", "demo",
                          "-p", "max_photos", "120"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "unknown parameter" not in run.stderr
    assert not list(scratch.iterdir()), f"left behind: {list(scratch.iterdir())}"
    text = out.read_text()
    assert KEY not in text and KEY not in run.stdout and KEY not in run.stderr
    nb = json.loads(text)
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    mimes = {m for o in outputs for m in o.get("data", {})}
    assert "image/png" in mimes
    html = "".join("".join(o.get("data", {}).get("text/html", "")) for o in outputs)
    assert "facelibExplorer(" in html and "if (!window.Plotly)" in html, "the explorer, plotly.js once"
    assert "Figure 3." in html, "numbered captions"
    markdown = "".join("".join(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    assert "faces were composited into these photos" in markdown and "it found **" in markdown
    assert "DEMO DATA" in text
    streams = "".join("".join(o.get("text", "")) for o in outputs if o.get("output_type") == "stream")
    assert "0 pending" in streams and "Flickr-Face:" in streams
