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
def test_page_renders_from_a_finished_run(tmp_path, repo_root) -> None:
    import jupytext
    import papermill

    imgs = [np.random.default_rng(i).integers(0, 256, (40, 40, 3), dtype=np.uint8) for i in range(16)]
    run = tmp_path / "run"
    train(recipes.pretrain("demo", **TINY), imgs, run, amp="off", progress=False, log_every=1)
    nb = jupytext.read(repo_root / "notebooks" / "03_swav_pretraining.py")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(nb, str(out), parameters={"run_dir": str(run), "train": False,
                                                         "heldout_faces": 40, "heldout_identities": 4},
                               kernel_name="python3", cwd=str(repo_root / "notebooks"), progress_bar=False)
    text = out.read_text()
    assert "pretrained (SwAV)" in text and "random initialisation" in text
    assert "top1_trained" in text and "usage_entropy" in text
