"""Checks that need a CUDA GPU: the paper-size SwAV step and every task's fine-tuning on the device.

Skipped where no GPU is visible (CI has none); run them on a GPU machine with
``python -m pytest -m gpu tests/test_gpu.py``. They catch what CPU tests cannot: tensors left
on the wrong device, mixed precision on CUDA (bf16 autocast, the fp16 scaler), pinned-memory
loading, and a paper-size ResNet-50 step that must stay finite.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from facelib import recipes

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_swav_paper_model_trains_on_gpu_in_bf16_and_resumes(tmp_path):
    from facelib.data.synth import SynthFaces
    from facelib.swav import train as T

    # The paper's network, crops, prototypes and schedule; only the data is small (128 faces,
    # 64 per step as on one of the paper's 64 GPUs).
    recipe = recipes.pretrain("paper", batch_size=64, num_gpus=1, sync_bn=False, epochs=2,
                              train_images=128, warmup_epochs=1, freeze_prototypes_iters=1)
    data = SynthFaces(128, seed=3, size=recipe.input_size)
    first = T.train(recipe, data, tmp_path, device="cuda", until_epoch=1, progress=False)
    assert first.epochs_done == 1 and not first.finished
    start = T.read_log(tmp_path, "start")[0]
    assert start["device"].startswith("cuda") and start["amp"] == "bfloat16", start
    second = T.train(recipe, data, tmp_path, resume=True, device="cuda", progress=False)
    assert second.finished and second.epochs_done == 2
    iters = T.read_log(tmp_path, "iter")
    losses = [r["loss"] for r in iters]
    assert losses and all(math.isfinite(x) for x in losses)
    assert all(0 < x < 2 * math.log(recipe.num_prototypes) for x in losses)
    trunk = torch.load(second.trunk_path, map_location="cpu", weights_only=True)
    assert "layer4.2.conv3.weight" in trunk  # ResNet-50, plain torchvision layout
    assert all(torch.isfinite(v).all() for v in trunk.values() if v.is_floating_point())


def test_swav_step_gpu_bf16_agrees_with_cpu_fp32():
    from facelib.swav.loss import SwAVLoss
    from facelib.swav.model import SwAVModel

    recipe = recipes.pretrain("paper")
    torch.manual_seed(0)
    model = SwAVModel.from_recipe(recipe).eval()
    crit = SwAVLoss.from_recipe(recipe)
    g = torch.Generator().manual_seed(1)
    crops = [torch.randn(4, 3, s, s, generator=g) for s, n in zip(recipe.size_crops, recipe.nmb_crops)
             for _ in range(n)]
    with torch.no_grad():
        emb, scores = model(crops)
        ref = float(crit(emb, scores, model.prototypes.weight).loss)
        gpu = model.cuda()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            emb_g, scores_g = gpu([c.cuda() for c in crops])
        got = float(crit.cuda()(emb_g.float(), scores_g.float(), gpu.prototypes.weight).loss)
    assert abs(got - ref) / ref < 0.02, (got, ref)


@pytest.mark.parametrize("task", ["recognition", "landmarks", "au", "emotion", "recon3d"])
def test_finetune_each_task_on_gpu(task, tmp_path):
    from facelib.tasks import finetune as FT

    data = FT.DataSpec(n_train=64, n_test=32, size=96, num_identities=8)
    metrics = FT.finetune(task, tmp_path / task, profile="demo", data=data, device="cuda",
                          overrides={"epochs": 2}, progress=False)
    assert metrics, f"{task}: no metrics"
    numbers = [v for v in metrics.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    assert numbers and all(np.isfinite(numbers)), metrics
    # The checkpoint was written from the GPU model and loads back on the CPU.
    ckpts = list((tmp_path / task).glob("*.pth"))
    assert ckpts, f"{task}: no checkpoint in {tmp_path / task}"
