"""Nearest-neighbour retrieval by identity: does a pretrained trunk group a person's faces?

A label-free check of a SwAV trunk (supplement 1.1 evaluates by fine-tuning; this is the
quick probe the demo page uses): embed held-out faces with the trunk's pooled features, then
for every face ask whether its nearest other face (cosine similarity) shows the same person,
and how early the same person's faces rank (mean average precision).
Shown in ``notebooks/03_swav_pretraining.py``.
"""

from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np
import torch
from torch import nn

__all__ = ["embed", "precise_bn", "retrieval_scores"]


def _batches(images: Sequence[np.ndarray], size: int, mean: Sequence[float], std: Sequence[float],
             batch_size: int):
    m = np.asarray(mean, np.float32) * 255
    s = np.asarray(std, np.float32) * 255
    for start in range(0, len(images), batch_size):
        chunk = [cv2.resize(np.asarray(im), (size, size), interpolation=cv2.INTER_AREA)
                 for im in images[start:start + batch_size]]
        x = (np.stack(chunk).astype(np.float32) - m) / s
        yield torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def precise_bn(trunk: nn.Module, images: Sequence[np.ndarray], size: int,
               mean: Sequence[float], std: Sequence[float], batch_size: int = 64) -> nn.Module:
    """A copy of ``trunk`` whose BatchNorm statistics are recomputed on ``images`` ("precise BN").

    A SwAV trunk's running statistics mix every crop resolution it was trained on (the trunk runs
    once per resolution, the small crops last), and a randomly initialised trunk has none (mean
    0, variance 1). Recomputing them as plain averages over batches of ``images`` resized to
    ``size`` puts both on the same footing before :func:`embed`. Labels are not used.

    Returns:
        A new module in eval mode; ``trunk`` is left unchanged.
    """
    import copy

    net = copy.deepcopy(trunk)
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return net.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
    net.train()
    for x in _batches(images, size, mean, std, batch_size):
        net(x)
    return net.eval()


@torch.no_grad()
def embed(trunk: nn.Module, images: Sequence[np.ndarray], size: int,
          mean: Sequence[float], std: Sequence[float], batch_size: int = 64) -> np.ndarray:
    """L2-normalised trunk features of whole images resized to ``size``.

    Args:
        trunk: maps (N, 3, size, size) to (N, F) (a ``SwAVModel.trunk`` or torchvision ResNet
            with ``fc = Identity``); run in eval mode.
        images: (H, W, 3) uint8 RGB images.
        size: side the images are resized to (the recipe's large crop size).
        mean, std: the recipe's normalisation.

    Returns:
        (N, F) float32 unit vectors.
    """
    was_training = trunk.training
    trunk.eval()
    feats = []
    try:
        for x in _batches(images, size, mean, std, batch_size):
            f = trunk(x)
            feats.append(torch.nn.functional.normalize(f.float(), dim=1).numpy())
    finally:
        trunk.train(was_training)
    return np.concatenate(feats)


def retrieval_scores(features: np.ndarray, labels: Sequence[Any]) -> dict[str, float]:
    """Leave-one-out retrieval of same-label items by cosine similarity.

    Args:
        features: (N, F) unit vectors.
        labels: N labels (e.g. identities).

    Returns:
        ``top1``: fraction of items whose nearest other item has the same label;
        ``map``: mean average precision of the same-label items in each item's ranking;
        ``chance_top1``: the expected ``top1`` of a random ranking.
    """
    f = np.asarray(features, np.float64)
    y = np.asarray(labels)
    n = len(y)
    if f.ndim != 2 or f.shape[0] != n or n < 2:
        raise ValueError(f"need (N, F) features for N >= 2 labels, got {f.shape} and {n} labels")
    sim = f @ f.T
    np.fill_diagonal(sim, -np.inf)
    order = np.argsort(-sim, axis=1)[:, : n - 1]  # every other item, most similar first
    hits = y[order] == y[:, None]
    top1 = float(hits[:, 0].mean())
    aps = []
    chance = []
    for row in hits:
        r = row.sum()
        chance.append(r / (n - 1))
        if r == 0:
            continue
        ranks = np.flatnonzero(row) + 1
        aps.append(float(np.mean(np.arange(1, r + 1) / ranks)))
    return {"top1": top1, "map": float(np.mean(aps)) if aps else 0.0, "chance_top1": float(np.mean(chance))}
