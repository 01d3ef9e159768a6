"""The SwAV swapped-prediction loss with optional queue (SwAV, arXiv:2006.09882; supplement 1.1).

Codes come from the crops in ``crops_for_assign`` (the two 224-px crops); every other crop
predicts them through ``softmax(scores / temperature)``. The average is the official one: over
the other crops, then over the assignment crops.

Shown in ``notebooks/03_swav_pretraining.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from .sinkhorn import sinkhorn, world_size

__all__ = ["swapped_prediction_loss", "SwAVLoss", "LossOutput"]


def swapped_prediction_loss(
    scores: Tensor,
    codes: Sequence[Tensor],
    crops_for_assign: Sequence[int],
    temperature: float = 0.1,
) -> Tensor:
    """Cross-entropy between codes of the assignment crops and predictions of every other crop.

    Args:
        scores: (V * B, K) prototype scores of V crops of B images, crop-major (crop 0's B rows first).
        codes: one (B, K) code matrix per entry of ``crops_for_assign``.
        crops_for_assign: indices of the crops whose codes are targets.
        temperature: softmax temperature (0.1 in the recipe).

    Returns:
        Scalar loss: mean over assignment crops of the mean over the other V - 1 crops of
        ``-mean_b sum_k q log p``.
    """
    if len(codes) != len(crops_for_assign) or not crops_for_assign:
        raise ValueError("one code matrix is needed per entry of crops_for_assign")
    b = codes[0].shape[0]
    if scores.shape[0] % b:
        raise ValueError(f"scores has {scores.shape[0]} rows, not a multiple of the batch {b}")
    v = scores.shape[0] // b
    if v < 2:
        raise ValueError("the swapped prediction needs at least 2 crops")
    logp = F.log_softmax(scores.float() / temperature, dim=1).view(v, b, -1)
    loss = scores.new_zeros((), dtype=torch.float32)
    for q, crop_id in zip(codes, crops_for_assign):
        if not 0 <= crop_id < v:
            raise ValueError(f"crop index {crop_id} out of range for {v} crops")
        # -mean_b sum_k q log p for every crop at once, then drop the crop's own term.
        per_crop = -(q.unsqueeze(0) * logp).sum(dim=2).mean(dim=1)  # (V,)
        loss = loss + (per_crop.sum() - per_crop[crop_id]) / (v - 1)
    return loss / len(crops_for_assign)


@dataclass
class LossOutput:
    """One step of :class:`SwAVLoss`: the loss and what the log reports about the assignments."""

    loss: Tensor  # scalar
    codes: list[Tensor]  # (B, K) per assignment crop
    code_entropy: Tensor  # scalar: mean per-sample entropy of the codes (nats)
    assignments: Tensor  # (n_assign * B,) argmax prototype of the assignment crops' scores
    # scalar: mean over the assignment crops' rows of the std of their scores over the K
    # prototypes. Near 0 the embeddings score every prototype alike (they sit in a direction the
    # prototypes do not cover): codes and predictions turn uniform and the loss sits at ln K.
    score_spread: Tensor | None = None


class SwAVLoss(nn.Module):
    """SwAV loss with Sinkhorn codes and the optional queue of past embeddings.

    The queue (``queue_length`` > 0) starts at epoch ``epoch_queue_starts``, is used only once
    full, and is shortened to a multiple of the global batch as in the original. It is a buffer,
    so it is saved with :meth:`state_dict` and restored on resume.

    Args:
        num_crops: total crops per image (8 in the recipe: 2 + 6).
        crops_for_assign: crops whose codes are targets ((0, 1) in the recipe).
        temperature, sinkhorn_eps, sinkhorn_iters: recipe values.
        feat_dim: embedding dimension (for the queue).
        queue_length: global queue length (0: none).
        epoch_queue_starts: first epoch with a queue.
        batch_size: global batch size (the queue length is rounded down to a multiple of it).
        group: process group of the data-parallel run.
    """

    def __init__(
        self,
        num_crops: int,
        crops_for_assign: Sequence[int] = (0, 1),
        temperature: float = 0.1,
        sinkhorn_eps: float = 0.05,
        sinkhorn_iters: int = 3,
        feat_dim: int = 128,
        queue_length: int = 0,
        epoch_queue_starts: int = 15,
        batch_size: int = 1,
        group: dist.ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        self.num_crops = num_crops
        self.crops_for_assign = tuple(crops_for_assign)
        self.temperature = temperature
        self.sinkhorn_eps = sinkhorn_eps
        self.sinkhorn_iters = sinkhorn_iters
        self.group = group
        ws = world_size(group)
        self.queue_length = queue_length - queue_length % batch_size if queue_length > 0 else 0
        self.local_queue_length = self.queue_length // ws
        self.epoch_queue_starts = epoch_queue_starts
        self.feat_dim = feat_dim
        self.register_buffer("queue", torch.zeros(0), persistent=True)
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long), persistent=True)

    @classmethod
    def from_recipe(cls, recipe: Any, group: dist.ProcessGroup | None = None) -> "SwAVLoss":
        return cls(
            num_crops=sum(recipe.nmb_crops), crops_for_assign=recipe.crops_for_assign,
            temperature=recipe.temperature, sinkhorn_eps=recipe.sinkhorn_eps,
            sinkhorn_iters=recipe.sinkhorn_iters, feat_dim=recipe.feat_dim,
            queue_length=recipe.queue_length, epoch_queue_starts=recipe.epoch_queue_starts,
            batch_size=recipe.batch_size, group=group)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kw: Any) -> None:
        # The queue's shape depends on whether it has started: take the saved one.
        key = prefix + "queue"
        if key in state_dict:
            self.queue = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kw)

    def start_epoch(self, epoch: int, device: torch.device | str = "cpu") -> None:
        """Create the queue when ``epoch`` reaches ``epoch_queue_starts`` (call at each epoch start)."""
        if self.local_queue_length > 0 and epoch >= self.epoch_queue_starts and self.queue.numel() == 0:
            self.queue = torch.zeros(len(self.crops_for_assign), self.local_queue_length,
                                     self.feat_dim, device=device)
            self.queue_filled.zero_()

    def forward(self, embedding: Tensor, scores: Tensor, prototypes: Tensor) -> LossOutput:
        """Loss of one step.

        Args:
            embedding: (V * B, D) L2-normalised embeddings, crop-major.
            scores: (V * B, K) prototype scores.
            prototypes: (K, D) prototype weights (scores of queued embeddings are recomputed).
        """
        n = scores.shape[0]
        if n % self.num_crops:
            raise ValueError(f"{n} rows of scores is not a multiple of {self.num_crops} crops")
        bs = n // self.num_crops
        emb = embedding.detach()
        codes = []
        use_queue = self.queue.numel() > 0 and int(self.queue_filled) >= self.local_queue_length
        with torch.no_grad():
            for i, crop_id in enumerate(self.crops_for_assign):
                out = scores[bs * crop_id: bs * (crop_id + 1)].detach().float()
                if self.queue.numel() > 0:
                    if use_queue:
                        out = torch.cat((self.queue[i] @ prototypes.detach().float().t(), out))
                    self.queue[i, bs:] = self.queue[i, :-bs].clone()
                    self.queue[i, :bs] = emb[crop_id * bs: (crop_id + 1) * bs].float()
                q = sinkhorn(out, self.sinkhorn_iters, self.sinkhorn_eps, self.group)[-bs:]
                codes.append(q)
            if self.queue.numel() > 0:
                self.queue_filled.fill_(min(int(self.queue_filled) + bs, self.local_queue_length))
        loss = swapped_prediction_loss(scores, codes, self.crops_for_assign, self.temperature)
        with torch.no_grad():
            q_all = torch.cat(codes)
            entropy = -(q_all * torch.log(q_all.clamp_min(1e-30))).sum(dim=1).mean()
            rows = torch.cat([scores[bs * c: bs * (c + 1)].detach().float() for c in self.crops_for_assign])
            assign = rows.argmax(dim=1)
            spread = rows.std(dim=1).mean()
        return LossOutput(loss=loss, codes=codes, code_entropy=entropy, assignments=assign,
                          score_spread=spread)
