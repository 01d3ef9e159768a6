"""The SwAV page executes on a finished run (slow: notebook execution)."""

from __future__ import annotations

import numpy as np
import pytest

from facelib import recipes
from facelib.swav.train import train

TINY = dict(arch="resnet18", batch_size=8, epochs=2, num_prototypes=12, hidden_mlp=32, feat_dim=16,
            nmb_crops=(2, 2), size_crops=(32, 16), input_size=40, train_images=0,
            freeze_prototypes_iters=2)


@pytest.mark.slow
def test_page_renders_from_finished_runs(tmp_path, repo_root) -> None:
    """Both pretrainings finished (tiny ones): the page draws the curves, probes the trunks on
    the crossed probe and computes its verdicts without training anything."""
    import jupytext
    import papermill

    from facelib.swav.train import DataSpec

    runs = {}
    for method in ("SwAV", "supervised"):
        recipe = recipes.pretrain("demo", method=method, **TINY, synthetic_identities=4)
        runs[method] = tmp_path / method
        train(recipe, DataSpec("synthetic", synthetic_images=16).build(recipe), runs[method], amp="off",
              progress=False, log_every=1)
    nb = jupytext.read(repo_root / "notebooks" / "03_swav_pretraining.py")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    out = tmp_path / "out.ipynb"
    params = {"run_dir": str(runs["SwAV"]), "supervised_dir": str(runs["supervised"]), "train": False,
              "probe_seeds": [101, 102], "probe_persons": 5, "probe_scenes": 4, "bn_images": 16}
    papermill.execute_notebook(nb, str(out), parameters=params, kernel_name="python3",
                               cwd=str(repo_root / "notebooks"), progress_bar=False)
    text = out.read_text()
    for name in ("ours (SwAV)", "supervised", "random init", "raw pixels"):
        assert name in text  # every representation was probed
    assert "identity k-NN top-1" in text and "scene k-NN top-1" in text and "identity linear probe" in text
    assert "Against random initialisation our SwAV trunk retrieves" in text  # the computed verdict
    assert "usage_entropy" in text or "usage entropy" in text
