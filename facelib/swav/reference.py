"""Faithful re-implementations of the official SwAV code, kept as the baseline.

These follow ``facebookresearch/swav`` (``main_swav.py``, ``src/multicropdataset.py``) and
apex's ``LARC`` line by line, minus CUDA and the ``global args``: tests check our
implementation against them and ``benchmarks/`` measure our speed against them. Training never
uses this module.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from .sinkhorn import world_size

__all__ = [
    "distributed_sinkhorn",
    "swav_loss",
    "LARC",
    "official_multicrop",
    "official_forward",
]


@torch.no_grad()
def distributed_sinkhorn(out: Tensor, eps: float = 0.05, nmb_iters: int = 3) -> Tensor:
    """``q = exp(out / eps).t(); distributed_sinkhorn(q, nmb_iters)`` from ``main_swav.py``.

    Args:
        out: (B, K) scores. Returns: (B, K) codes (``nan`` where ``exp`` overflowed).
    """
    ws = world_size()
    Q = torch.exp(out / eps).t()
    sum_Q = torch.sum(Q)
    if ws > 1:
        dist.all_reduce(sum_Q)
    Q /= sum_Q
    r = torch.ones(Q.shape[0], device=Q.device) / Q.shape[0]
    c = torch.ones(Q.shape[1], device=Q.device) / (ws * Q.shape[1])
    curr_sum = torch.sum(Q, dim=1)
    if ws > 1:
        dist.all_reduce(curr_sum)
    for _ in range(nmb_iters):
        u = curr_sum
        Q *= (r / u).unsqueeze(1)
        Q *= (c / torch.sum(Q, dim=0)).unsqueeze(0)
        curr_sum = torch.sum(Q, dim=1)
        if ws > 1:
            dist.all_reduce(curr_sum)
    return (Q / torch.sum(Q, dim=0, keepdim=True)).t().float()


def swav_loss(
    output: Tensor,
    bs: int,
    nmb_crops: Sequence[int],
    crops_for_assign: Sequence[int] = (0, 1),
    temperature: float = 0.1,
    epsilon: float = 0.05,
    sinkhorn_iterations: int = 3,
) -> Tensor:
    """The loss block of ``main_swav.train`` without the queue.

    Args:
        output: (sum(nmb_crops) * bs, K) prototype scores, crops in order. Returns: scalar loss.
    """
    softmax = nn.Softmax(dim=1)
    loss: Any = 0
    for i, crop_id in enumerate(crops_for_assign):
        with torch.no_grad():
            out = output[bs * crop_id: bs * (crop_id + 1)].detach()
            q = distributed_sinkhorn(out, epsilon, sinkhorn_iterations)[-bs:]
        subloss: Any = 0
        for v in np.delete(np.arange(np.sum(nmb_crops)), crop_id):
            p = softmax(output[bs * v: bs * (v + 1)] / temperature)
            subloss -= torch.mean(torch.sum(q * torch.log(p), dim=1))
        loss += subloss / (np.sum(nmb_crops) - 1)
    loss /= len(crops_for_assign)
    return loss


class LARC:
    """apex.parallel.LARC (``clip=False``) around an optimizer, as SwAV uses it."""

    def __init__(self, optimizer: torch.optim.Optimizer, trust_coefficient: float = 0.02,
                 clip: bool = True, eps: float = 1e-8) -> None:
        self.optim = optimizer
        self.trust_coefficient = trust_coefficient
        self.eps = eps
        self.clip = clip

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optim.param_groups

    def zero_grad(self) -> None:
        self.optim.zero_grad()

    def step(self) -> None:
        with torch.no_grad():
            weight_decays = []
            for group in self.optim.param_groups:
                weight_decay = group["weight_decay"] if "weight_decay" in group else 0
                weight_decays.append(weight_decay)
                group["weight_decay"] = 0
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    param_norm = torch.norm(p.data)
                    grad_norm = torch.norm(p.grad.data)
                    if param_norm != 0 and grad_norm != 0:
                        adaptive_lr = self.trust_coefficient * (param_norm) / (
                            grad_norm + param_norm * weight_decay + self.eps)
                        if self.clip:
                            adaptive_lr = min(adaptive_lr / group["lr"], 1)
                        p.grad.data += weight_decay * p.data
                        p.grad.data *= adaptive_lr
        self.optim.step()
        for i, group in enumerate(self.optim.param_groups):
            group["weight_decay"] = weight_decays[i]


def official_multicrop(
    size_crops: Sequence[int] = (224, 96),
    nmb_crops: Sequence[int] = (2, 6),
    min_scale_crops: Sequence[float] = (0.14, 0.05),
    max_scale_crops: Sequence[float] = (1.0, 0.14),
) -> Callable[[Any], list[Tensor]]:
    """The PIL + torchvision pipeline of ``src/multicropdataset.py``: PIL image -> list of crops."""
    import cv2
    import torchvision.transforms as transforms

    class RandomGaussianBlur:
        def __call__(self, img: Any) -> Any:
            do_it = np.random.rand() > 0.5
            if not do_it:
                return img
            sigma = np.random.rand() * 1.9 + 0.1
            return cv2.GaussianBlur(np.asarray(img), (23, 23), sigma)

    color_jitter = transforms.ColorJitter(0.8, 0.8, 0.8, 0.2)
    color_distort = transforms.Compose([
        transforms.RandomApply([color_jitter], p=0.8), transforms.RandomGrayscale(p=0.2)])
    color_transform = transforms.Compose([color_distort, RandomGaussianBlur()])
    mean = [0.485, 0.456, 0.406]
    std = [0.228, 0.224, 0.225]
    trans: list[Any] = []
    for i in range(len(size_crops)):
        rrc = transforms.RandomResizedCrop(size_crops[i], scale=(min_scale_crops[i], max_scale_crops[i]))
        trans.extend([transforms.Compose([
            rrc, transforms.RandomHorizontalFlip(p=0.5), color_transform,
            transforms.ToTensor(), transforms.Normalize(mean=mean, std=std)])] * nmb_crops[i])

    def multicrop(image: Any) -> list[Tensor]:
        return [t(image) for t in trans]

    return multicrop


def official_forward(model: nn.Module, inputs: list[Tensor]) -> tuple[Tensor, Tensor]:
    """``ResNet.forward`` of ``src/resnet50.py`` for a :class:`facelib.swav.model.SwAVModel`.

    Returns:
        ((N, D) normalised embeddings, (N, K) prototype scores).
    """
    idx_crops = torch.cumsum(torch.unique_consecutive(
        torch.tensor([inp.shape[-1] for inp in inputs]), return_counts=True)[1], 0)
    start_idx = 0
    output: Any = None
    for end_idx in idx_crops:
        _out = model.trunk(torch.cat(inputs[start_idx:end_idx]))
        output = _out if start_idx == 0 else torch.cat((output, _out))
        start_idx = end_idx
    x = nn.functional.normalize(model.projection(output), dim=1, p=2)
    return x, model.prototypes(x)
