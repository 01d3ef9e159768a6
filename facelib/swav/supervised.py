"""Supervised pretraining on identity labels: the paper's supervised baseline, in the same loop.

The paper compares its SwAV pretraining with a network pretrained *with* labels on VGG-Face2
(the "supervised" initialisation of its fine-tuning tables). ``recipes.Pretrain.method =
"supervised"`` runs that baseline through :func:`facelib.swav.train.train` with everything
else unchanged (trunk, data, multi-crop augmentations, optimiser, schedule, checkpoints): the
trunk's pooled features of the large crops go through one linear layer to the identities and
the loss is the cross-entropy. Only the objective differs from SwAV, so the comparison is
controlled. The exported ``trunk.pth`` is a plain torchvision trunk, like SwAV's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .model import build_trunk

__all__ = ["IdentityModel", "IdentityLoss", "METHODS", "large_crops_only", "num_identities"]

#: Pretraining objectives of ``recipes.Pretrain.method``.
METHODS = ("SwAV", "supervised")


def large_crops_only(recipe: Any) -> Any:
    """``recipe`` with only its first crop group: the large views :class:`IdentityModel` uses.

    The multi-crop draws an image's crops from that image's own generator, large crops first,
    so these are the very crops the full multi-crop would give; the loader just skips making the
    small ones, which the supervised loss never sees. Measured on the demo recipe (40 px faces,
    one core): the loader's transform makes 2,150 images/s with 2 + 4 crops and 5,233 with the 2
    large ones; the demo's supervised run (one loader worker beside the step) went from 1,453 to
    1,688 images/s (``benchmarks/bench_supervised_pretrain.py``: ratio 1.16).
    """
    return dataclasses.replace(
        recipe, nmb_crops=tuple(recipe.nmb_crops[:1]), size_crops=tuple(recipe.size_crops[:1]),
        min_scale_crops=tuple(recipe.min_scale_crops[:1]), max_scale_crops=tuple(recipe.max_scale_crops[:1]))


class IdentityModel(nn.Module):
    """A ResNet trunk and a linear classifier over ``num_classes`` identities.

    ``forward(crops)`` returns ``(features, logits)`` of the first ``num_large`` crops (the
    large views; the small ones are not used), crop-major like :class:`SwAVModel`.
    """

    def __init__(self, arch: str, width: int, num_classes: int, num_large: int) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"supervised pretraining needs at least 2 identities, got {num_classes}")
        self.arch = arch
        self.trunk = build_trunk(arch, width)
        self.num_features = int(self.trunk.num_features)  # type: ignore[arg-type]
        self.classifier = nn.Linear(self.num_features, num_classes)
        self.num_large = num_large

    @classmethod
    def from_recipe(cls, recipe: Any, num_classes: int) -> "IdentityModel":
        return cls(recipe.arch, recipe.width, num_classes, recipe.nmb_crops[0])

    def forward(self, crops: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        feats = self.trunk(torch.cat(list(crops[: self.num_large])))
        return feats, self.classifier(feats)


@dataclass
class _Output:
    loss: Tensor
    code_entropy: Tensor        # mean entropy of the predicted class distribution
    assignments: Tensor         # predicted classes (for the usage statistics)
    score_spread: Tensor        # std of an image's logits over the classes
    accuracy: Tensor


class IdentityLoss(nn.Module):
    """Cross-entropy of every large crop's logits against the image's identity."""

    def forward(self, logits: Tensor, labels: Tensor) -> _Output:
        views = logits.shape[0] // labels.shape[0]
        target = labels.repeat(views)
        loss = F.cross_entropy(logits, target)
        with torch.no_grad():
            p = logits.softmax(dim=1)
            entropy = -(p * p.clamp_min(1e-30).log()).sum(dim=1).mean()
            pred = logits.argmax(dim=1)
            return _Output(loss, entropy, pred, logits.std(dim=1).mean(), (pred == target).float().mean())


def num_identities(dataset: Any) -> int:
    """Number of identities of a dataset whose items are ``(image, {"identity": int, ...})``:
    the largest identity + 1, read from every item's labels.

    Raises:
        ValueError: an item carries no ``identity`` label (e.g. unlabelled face shards).
    """
    top = -1
    for i in range(len(dataset)):
        item = dataset[i]
        labels = item[1] if isinstance(item, (tuple, list)) and len(item) > 1 else None
        if not isinstance(labels, dict) or "identity" not in labels:
            raise ValueError(f"supervised pretraining needs identity labels; item {i} of "
                             f"{type(dataset).__name__} has none")
        top = max(top, int(labels["identity"]))
    return top + 1
