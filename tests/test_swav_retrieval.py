"""Identity retrieval probe: hand-checked scores, embedding shapes, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facelib.swav.model import build_trunk
from facelib.swav.retrieval import _batches, embed, precise_bn, retrieval_scores


def test_scores_on_a_hand_checked_case() -> None:
    # Two persons, two faces each, on a line: a0=0, a1=0.1 (person A), b0=1, b1=0.35 (person B).
    angles = np.array([0.0, 0.1, 1.0, 0.35])
    f = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    s = retrieval_scores(f, ["A", "A", "B", "B"])
    # Nearest others: a0->a1 (hit), a1->a0 (hit), b0->b1 (hit), b1->a1 (miss).
    assert s["top1"] == pytest.approx(0.75)
    # b1's ranking: a1 (0.25), a0 (0.35), b0 (0.65): its only match is at rank 3 -> AP 1/3.
    assert s["map"] == pytest.approx((1 + 1 + 1 + 1 / 3) / 4)
    assert s["chance_top1"] == pytest.approx(1 / 3)


def test_perfect_and_random_features() -> None:
    labels = np.repeat(np.arange(5), 4)
    perfect = np.eye(5)[labels] + 1e-3 * np.random.default_rng(0).normal(size=(20, 5))
    assert retrieval_scores(perfect / np.linalg.norm(perfect, axis=1, keepdims=True), labels)["top1"] == 1.0


def test_embed_gives_unit_vectors_and_restores_mode() -> None:
    torch.manual_seed(0)
    trunk = build_trunk("resnet18").train()
    imgs = [np.random.default_rng(i).integers(0, 256, (40, 48, 3), dtype=np.uint8) for i in range(5)]
    f = embed(trunk, imgs, 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), batch_size=2)
    assert f.shape == (5, 512) and np.allclose(np.linalg.norm(f, axis=1), 1, atol=1e-5)
    assert trunk.training


def test_precise_bn_recomputes_the_statistics_on_the_images_and_leaves_the_trunk() -> None:
    torch.manual_seed(0)
    trunk = build_trunk("resnet18").train()
    before = {k: v.clone() for k, v in trunk.state_dict().items()}
    imgs = [np.random.default_rng(i).integers(0, 256, (40, 48, 3), dtype=np.uint8) for i in range(6)]
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    net = precise_bn(trunk, imgs, 32, mean, std, batch_size=3)
    assert not net.training and trunk.training
    for k, v in trunk.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed in the original trunk"
    # bn1 sees conv1's output: its running mean is the average of the two batches' means.
    with torch.no_grad():
        means = [trunk.conv1(x).mean(dim=(0, 2, 3)) for x in _batches(imgs, 32, mean, std, 3)]
    assert torch.allclose(net.bn1.running_mean, torch.stack(means).mean(0), atol=1e-5)
    assert int(net.bn1.num_batches_tracked) == 2
    f = embed(net, imgs, 32, mean, std)
    assert f.shape == (6, 512) and np.isfinite(f).all()


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="N >= 2"):
        retrieval_scores(np.ones((3, 2)), [0, 1])
