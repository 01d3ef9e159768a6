"""Sinkhorn-Knopp soft assignment of a batch to prototypes (SwAV, arXiv:2006.09882; supplement 1.1).

The official ``distributed_sinkhorn`` computes ``exp(scores / eps)`` directly: with eps = 0.05 a
score above ~4.4 overflows float32 (and fp16 under apex O1 overflows at ~0.55). Here the exponent
is shifted by the per-prototype maximum over the (global) batch. Sinkhorn's first step rescales
every prototype's row, so a per-prototype factor cancels exactly: the codes are the official
ones, only the exponent range changes. The iterations keep the two scaling vectors instead of
rescaling the (B, K) matrix in place, so each iteration reads the matrix twice and writes nothing.
If some sample still underflows (a sample whose every score lies ~100 eps below every
prototype's maximum), the whole call, on every rank, is redone in the log domain.

Shown in ``notebooks/03_swav_pretraining.py``.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["sinkhorn", "sinkhorn_log", "world_size"]


def world_size(group: dist.ProcessGroup | None = None) -> int:
    """Number of processes in ``group`` (1 when torch.distributed is not initialised)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(group)
    return 1


def _all_reduce(t: Tensor, op: dist.ReduceOp.RedOpType, group: dist.ProcessGroup | None,
                world: int) -> Tensor:
    if world > 1:
        dist.all_reduce(t, op=op, group=group)
    return t


def _check(scores: Tensor, num_iters: int, eps: float) -> None:
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(f"sinkhorn: scores must be a non-empty (B, K) matrix, got shape {tuple(scores.shape)}")
    if num_iters < 0:
        raise ValueError(f"sinkhorn: num_iters must be >= 0, got {num_iters}")
    if not eps > 0:
        raise ValueError(f"sinkhorn: eps must be > 0, got {eps}")


@torch.no_grad()
def sinkhorn(
    scores: Tensor,
    num_iters: int = 3,
    eps: float = 0.05,
    group: dist.ProcessGroup | None = None,
) -> Tensor:
    """Soft-assign a batch to prototypes with equal prototype usage (Sinkhorn-Knopp).

    Equivalent to SwAV's ``distributed_sinkhorn(exp(scores / eps).t(), num_iters)``: when
    torch.distributed is initialised the prototype sums are all-reduced over ``group``, so
    every process must call it with a local batch of the same size B.

    Args:
        scores: (B, K) similarities between the local batch and the K prototypes, any float dtype.
        num_iters: Sinkhorn iterations (3 in the recipe).
        eps: entropic regularisation (0.05 in the recipe).
        group: process group over which the batch is split (default: the world).

    Returns:
        (B, K) float32 codes; each row sums to 1 and, over the global batch, each prototype
        receives B_global / K of the mass (after the last iteration, up to convergence).
    """
    _check(scores, num_iters, eps)
    s = scores.detach().float()
    if num_iters == 0:  # no prototype step: each sample's codes are softmax(scores / eps)
        return torch.softmax(s / eps, dim=1)
    world = world_size(group)
    b, k = s.shape
    # Per-prototype max over the global batch: cancels in the first prototype normalisation.
    m = s.amax(dim=0)
    _all_reduce(m, dist.ReduceOp.MAX, group, world)
    p = torch.sub(s, m).div_(eps).exp_()  # (B, K), global column max is exactly 1

    r = 1.0 / k  # target mass per prototype
    c = 1.0 / (world * b)  # target mass per sample
    col = torch.full((b,), c, dtype=p.dtype, device=p.device)  # per-sample scaling
    a = torch.ones(k, dtype=p.dtype, device=p.device)  # per-prototype scaling
    pa = p.sum(dim=1)
    for _ in range(num_iters):
        proto_mass = col @ p  # (K,) sum over samples, before prototype scaling
        _all_reduce(proto_mass, dist.ReduceOp.SUM, group, world)
        a = r / proto_mass
        pa = p @ a  # (B,) sum over prototypes
        col = c / pa
    bad = ~(torch.isfinite(pa).all() & (pa > 0).all() & torch.isfinite(a).all())
    flag = bad.to(torch.float32).reshape(1)
    _all_reduce(flag, dist.ReduceOp.MAX, group, world)
    if flag.item() > 0:
        return sinkhorn_log(scores, num_iters, eps, group)
    p.mul_(a)
    p.mul_((1.0 / pa).unsqueeze(1))
    return p


@torch.no_grad()
def sinkhorn_log(
    scores: Tensor,
    num_iters: int = 3,
    eps: float = 0.05,
    group: dist.ProcessGroup | None = None,
) -> Tensor:
    """:func:`sinkhorn` in the log domain, in float64: never overflows or underflows (slower).

    Args and returns as :func:`sinkhorn`.
    """
    _check(scores, num_iters, eps)
    world = world_size(group)
    s = scores.detach().double()  # exponents of ~1000 need float64 to keep 1e-6 after exp
    if num_iters == 0:
        return torch.softmax(s / eps, dim=1).float()
    b, k = s.shape
    m = s.amax(dim=0)
    _all_reduce(m, dist.ReduceOp.MAX, group, world)
    logp = (s - m) / eps
    log_r = -torch.log(torch.tensor(float(k)))
    log_c = -torch.log(torch.tensor(float(world * b)))
    log_col = torch.full((b,), float(log_c), dtype=s.dtype, device=s.device)
    log_a = torch.zeros(k, dtype=s.dtype, device=s.device)

    def _global_lse_over_batch(x: Tensor) -> Tensor:  # (B, K) -> (K,) over the global batch
        mx = x.amax(dim=0)
        _all_reduce(mx, dist.ReduceOp.MAX, group, world)
        mx = torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx))
        se = torch.exp(x - mx).sum(dim=0)
        _all_reduce(se, dist.ReduceOp.SUM, group, world)
        return mx + torch.log(se)

    log_pa = torch.logsumexp(logp, dim=1)
    for _ in range(num_iters):
        log_a = log_r - _global_lse_over_batch(logp + log_col.unsqueeze(1))
        log_pa = torch.logsumexp(logp + log_a.unsqueeze(0), dim=1)
        log_col = log_c - log_pa
    return torch.exp(logp + log_a.unsqueeze(0) - log_pa.unsqueeze(1)).float()
