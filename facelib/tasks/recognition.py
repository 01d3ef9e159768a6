"""Face recognition: 5-point alignment, embedding head, CosFace loss, verification (supplement 1.2).

"All images were normalized and aligned using the provided 5 landmarks. During training, the
only augmentation applied was random horizontal flipping" (1.2): each face is warped by the
similarity that maps its 5 landmarks onto the ArcFace template scaled to the input size
(:func:`facelib.faces.align.estimate_similarity`). Head (insightface's "E" output, a
convention): BN, dropout-free flatten, linear to ``embedding_dim``, BN. Loss: CosFace (Wang et
al. 2018) ``s * (cos(theta_y) - m)`` for the true class, ``s * cos(theta_j)`` otherwise, with
``m = 0.35`` as printed and ``s = 64``, which the supplement does not give.

Evaluation on identities held out from training: verification accuracy with 10-fold threshold
selection on image pairs (LFW protocol) and TAR at FAR on template pairs (IJB protocol; a
template is the mean of a person's normalised embeddings over a half of their images).

Shown in ``notebooks/04_face_recognition.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facelib import metrics
from facelib.faces import align
from facelib.tasks import augment as A
from facelib.tasks.base import Task

__all__ = ["EmbeddingHead", "CosFace", "RecognitionTask", "image_pairs", "template_pairs"]


class EmbeddingHead(nn.Module):
    """(B, C, s, s) -> (B, D) embeddings: BN2d, flatten, linear, BN1d."""

    def __init__(self, channels: int, side: int, dim: int) -> None:
        super().__init__()
        self.bn_in = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels * side * side, dim)
        self.bn_out = nn.BatchNorm1d(dim)

    def forward(self, feat: Tensor) -> Tensor:
        return self.bn_out(self.fc(self.bn_in(feat).flatten(1)))


class CosFace(nn.Module):
    """Large-margin cosine loss (CosFace, Wang et al. CVPR 2018).

    ``L = CE(s * (W_n^T x_n - m * onehot(y)), y)`` with ``W_n`` the L2-normalised class weights
    (``(num_classes, dim)``) and ``x_n`` the L2-normalised embedding.
    """

    def __init__(self, dim: int, num_classes: int, margin: float, scale: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, dim))
        nn.init.normal_(self.weight, std=0.01)
        self.margin, self.scale = margin, scale

    def logits(self, emb: Tensor, labels: Tensor) -> Tensor:
        """(B, D), (B,) -> (B, num_classes) margin-adjusted, scaled cosines."""
        cos = F.linear(F.normalize(emb, dim=1), F.normalize(self.weight, dim=1))
        onehot = F.one_hot(labels, cos.shape[1]).to(cos.dtype)
        return self.scale * (cos - self.margin * onehot)

    def forward(self, emb: Tensor, labels: Tensor) -> Tensor:
        return F.cross_entropy(self.logits(emb, labels), labels)


class _RecognitionHead(nn.Module):
    def __init__(self, channels: int, side: int, dim: int, num_classes: int, margin: float,
                 scale: float) -> None:
        super().__init__()
        self.embed = EmbeddingHead(channels, side, dim)
        self.cosface = CosFace(dim, num_classes, margin, scale)

    def forward(self, feat: Tensor) -> Tensor:
        return self.embed(feat)


def image_pairs(identity: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every genuine pair of images and as many impostor pairs drawn at random, shuffled.

    Returns:
        ((M, 2) image indices, (M,) 1 genuine / 0 impostor).
    """
    ident = np.asarray(identity)
    i, j = np.triu_indices(len(ident), k=1)
    same = ident[i] == ident[j]
    rng = np.random.default_rng(seed)
    gen = np.flatnonzero(same)
    imp = rng.choice(np.flatnonzero(~same), size=min(len(gen), int((~same).sum())), replace=False)
    keep = rng.permutation(np.r_[gen, imp])
    return np.stack([i[keep], j[keep]], 1), same[keep].astype(np.int64)


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, in float64 (embeddings of a diverged model can overflow float32)."""
    x = np.asarray(x, dtype=np.float64)
    x = x / np.abs(x).max(axis=1, keepdims=True).clip(min=1e-300)
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-300)


def template_pairs(emb: np.ndarray, identity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two templates per person (mean normalised embedding of each half of their images); all pairs.

    Returns:
        ((T, D) unit-norm templates, (T,) their identities). Persons with one image are skipped.
    """
    e = _unit(emb)
    temps, ids = [], []
    for person in np.unique(identity):
        idx = np.flatnonzero(identity == person)
        if len(idx) < 2:
            continue
        for half in (idx[: len(idx) // 2], idx[len(idx) // 2:]):
            temps.append(_unit(e[half].mean(0, keepdims=True))[0])
            ids.append(person)
    return np.array(temps), np.array(ids)


class RecognitionTask(Task):
    """Face recognition (``recipes.Recognition``); ``num_classes`` = training identities."""

    name = "recognition"

    def __init__(self, *args: Any, num_classes: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.num_classes = num_classes

    def geometry(self) -> A.Geometry:
        return A.Geometry(hflip_p=self.recipe.hflip_p)  # the only augmentation

    def crop_matrix(self, labels: dict[str, Any]) -> np.ndarray:
        s = self.input_size
        return align.estimate_similarity(np.asarray(labels["landmarks_5"], np.float64), align.template((s, s)))

    def photometric(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return image

    def targets(self, labels: dict[str, Any], m: np.ndarray, flipped: bool) -> dict[str, np.ndarray]:
        return {"identity": np.int64(labels["identity"])}

    def build_head(self, channels: int, side: int) -> nn.Module:
        if self.num_classes < 2:
            raise ValueError("recognition needs at least 2 training identities (num_classes)")
        r = self.recipe
        return _RecognitionHead(channels, side, r.embedding_dim, self.num_classes, r.cosface_margin,
                                r.cosface_scale)

    def loss(self, model: nn.Module, out: Tensor, target: dict[str, Tensor]) -> Tensor:
        return model.head.cosface(out, target["identity"])

    def predict(self, out: Tensor) -> dict[str, np.ndarray]:
        return {"embedding": out.detach().float().cpu().numpy()}

    def evaluate(self, pred: dict[str, np.ndarray],
                 target: dict[str, np.ndarray]) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        emb, ident = pred["embedding"], target["identity"]
        e = _unit(emb)
        pairs, same = image_pairs(ident)
        scores = np.sum(e[pairs[:, 0]] * e[pairs[:, 1]], axis=1)
        ver = metrics.verification_accuracy(scores, same, n_folds=min(10, len(same)))
        temps, tid = template_pairs(emb, ident)
        ti, tj = np.triu_indices(len(temps), k=1)
        tscores = np.sum(temps[ti] * temps[tj], axis=1)
        tsame = (tid[ti] == tid[tj]).astype(np.int64)
        fars = tuple(self.recipe.far_targets)
        tar = np.atleast_1d(metrics.tar_at_far(tscores, tsame, fars))
        flat = {"verification_acc": ver["accuracy"], "verification_std": ver["std"],
                "num_pairs": float(len(same)), "num_template_impostors": float((tsame == 0).sum())}
        flat.update({f"tar_at_far_{f:g}": float(v) for f, v in zip(fars, tar)})
        fpr, tpr, _ = metrics.roc(tscores, tsame)
        return flat, {"roc_fpr": fpr, "roc_tpr": tpr, "pair_scores": scores, "pair_same": same}
