"""Emotion recognition, AffectNet protocol: valence, arousal and expression classes (supplement 1.2, 4.1).

"The task specific head h(.) is a linear layer that regresses the valence and arousal values
and also predicts the basic emotion classes. The network was trained to jointly minimise the
RMSE and CCC losses for valence and arousal, and the cross-entropy loss for classification"
(4.1): one linear layer on the pooled features gives ``2 + num_classes`` outputs; the loss is
``sum over {v, a} of (RMSE + 1 - CCC) + CE``. Augmentation as AU intensity without blur.
Adam with LR 0.1 as printed (unusually high for Adam: the recipe keeps it and says so).
Metrics: accuracy; RMSE, SAGR, PCC, CCC of valence and arousal (Table 3's columns).

Shown in ``notebooks/07_emotion.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facelib import metrics
from facelib.tasks.au import PooledLinear, mean_target_init
from facelib.tasks.base import Task

__all__ = ["ccc_loss", "emotion_loss", "EmotionTask"]


def ccc_loss(pred: Tensor, gt: Tensor) -> Tensor:
    """``1 - CCC`` of a batch (population moments, as :func:`facelib.metrics.ccc`); (B,) -> scalar."""
    mp, mg = pred.mean(), gt.mean()
    cov = ((pred - mp) * (gt - mg)).mean()
    den = pred.var(unbiased=False) + gt.var(unbiased=False) + (mp - mg) ** 2
    return 1 - 2 * cov / den.clamp_min(1e-12)


def emotion_loss(out: Tensor, valence: Tensor, arousal: Tensor, expression: Tensor) -> Tensor:
    """RMSE + (1 - CCC) for valence and arousal, plus cross-entropy of the classes.

    Args:
        out: (B, 2 + K): valence, arousal, then K class logits.
        valence, arousal: (B,) in [-1, 1]; expression: (B,) class indices.
    """
    loss = F.cross_entropy(out[:, 2:], expression)
    for i, gt in enumerate((valence, arousal)):
        loss = loss + torch.sqrt(F.mse_loss(out[:, i], gt) + 1e-12) + ccc_loss(out[:, i], gt)
    return loss


class EmotionTask(Task):
    """Valence, arousal and expressions (``recipes.Emotion``)."""

    name = "emotion"

    def targets(self, labels: dict[str, Any], m: np.ndarray, flipped: bool) -> dict[str, np.ndarray]:
        return {"valence": np.float32(labels["valence"]), "arousal": np.float32(labels["arousal"]),
                "expression": np.int64(labels["expression"])}

    def build_head(self, channels: int, side: int) -> nn.Module:
        return PooledLinear(channels, 2 + self.recipe.num_classes)

    def loss(self, model: nn.Module, out: Tensor, target: dict[str, Tensor]) -> Tensor:
        return emotion_loss(out, target["valence"], target["arousal"], target["expression"])

    def predict(self, out: Tensor) -> dict[str, np.ndarray]:
        o = out.detach().float().cpu().numpy()
        return {"valence": o[:, 0], "arousal": o[:, 1], "logits": o[:, 2:]}

    def init_head(self, head: nn.Module, train: dict[str, np.ndarray]) -> bool:
        if getattr(self.recipe, "head_init", "default") != "mean target":
            return False
        # class frequencies with one pseudo-count each (no class gets log 0)
        freq = np.bincount(train["expression"], minlength=self.recipe.num_classes) + 1.0
        log_prior = np.log(freq / freq.sum())
        return mean_target_init(head.fc, np.r_[train["valence"].mean(), train["arousal"].mean(),
                                               log_prior - log_prior.mean()])

    def mean_prediction(self, train: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        logits = np.zeros((n, self.recipe.num_classes))
        logits[:, np.bincount(train["expression"], minlength=self.recipe.num_classes).argmax()] = 1.0
        return {"valence": np.full(n, train["valence"].mean()), "arousal": np.full(n, train["arousal"].mean()),
                "logits": logits}

    def evaluate(self, pred: dict[str, np.ndarray],
                 target: dict[str, np.ndarray]) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        flat = {"acc": metrics.accuracy(pred["logits"], target["expression"])}
        for k in ("valence", "arousal"):
            p, g = pred[k], target[k]
            flat[f"{k}_rmse"] = metrics.rmse(p, g)
            flat[f"{k}_sagr"] = metrics.sagr(p, g)
            flat[f"{k}_pcc"] = metrics.pcc(p, g)
            flat[f"{k}_ccc"] = metrics.ccc(p, g)
        flat["ccc_mean"] = (flat["valence_ccc"] + flat["arousal_ccc"]) / 2  # the pages' headline
        return flat, {"confusion": _confusion(pred["logits"].argmax(1), target["expression"],
                                              self.recipe.num_classes)}


def _confusion(pred: np.ndarray, gt: np.ndarray, k: int) -> np.ndarray:
    """(K, K) counts: rows true class, columns predicted."""
    c = np.zeros((k, k), dtype=np.int64)
    np.add.at(c, (gt.astype(int), pred.astype(int)), 1)
    return c
