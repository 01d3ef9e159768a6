"""Pages 04-08 execute end to end on tiny synthetic grids and show our metrics (slow)."""

from __future__ import annotations

import json

import jupytext
import papermill
import pytest

pytestmark = pytest.mark.slow

PAGES = {
    "04_face_recognition": "verification_acc",
    "05_landmarks": "NME io (%)",
    "06_au_intensity": "icc_mean",
    "07_emotion": "Valence CCC",
    "08_3d_reconstruction": "NME 3D (%)",
}


@pytest.fixture(scope="module")
def trunk(tmp_path_factory):
    from facelib.swav.model import SwAVModel, export_trunk
    path = tmp_path_factory.mktemp("swav") / "trunk.pth"
    export_trunk(SwAVModel("resnet18", hidden_mlp=32, feat_dim=8, num_prototypes=4), path)
    return str(path)


def test_demo_swav_trunk_trains_once(tmp_path):
    from facelib.tasks.backbone import build_trunk, demo_swav_trunk
    path = demo_swav_trunk(tmp_path, images=32, epochs=2)
    assert path.is_file() and demo_swav_trunk(tmp_path, images=32, epochs=2) == path
    assert build_trunk("resnet18", "ours", path)[1]["layout"] == "torchvision"


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_runs_its_grid(page, repo_root, tmp_path, trunk):
    nb = jupytext.read(repo_root / "notebooks" / f"{page}.py")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    out = tmp_path / f"{page}.ipynb"
    params = {"results_dir": str(tmp_path / "results"), "n_train": 16, "n_test": 16, "num_identities": 4,
              "overrides": {"epochs": 1}, "swav_trunk": trunk}
    papermill.execute_notebook(nb, str(out), parameters=params, kernel_name="python3",
                               cwd=str(repo_root / "notebooks"), progress_bar=False)
    text = out.read_text()
    assert PAGES[page] in text
    task = json.loads((next((tmp_path / "results").glob("*/random/100pct/run.json"))).read_text())["task"]
    assert (tmp_path / "results" / task / "ours" / "10pct" / "metrics.json").exists()
    assert "Page time" in text


@pytest.mark.parametrize("page", sorted(PAGES))
def test_paper_page_renders_before_any_run_has_finished(page, repo_root, tmp_path):
    """The paper profile reads the SLURM runs: with none finished yet (first submission, or
    ``cluster: null`` on a fresh results folder) the page still renders, with empty tables."""
    nb = jupytext.read(repo_root / "notebooks" / f"{page}.py")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    out = tmp_path / f"{page}.ipynb"
    papermill.execute_notebook(nb, str(out), parameters={"profile": "paper", "results_dir": str(tmp_path / "r")},
                               kernel_name="python3", cwd=str(repo_root / "notebooks"), progress_bar=False)
    text = out.read_text()
    assert "0 finished runs" in text and "Page time" in text
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").rglob("metrics.json"))
