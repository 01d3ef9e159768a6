"""Synchronised batch normalisation that also runs on CPU (gloo), in groups of processes.

Supplement 1.1 trains with Synchronized Batch Normalization; the authors' code synchronises
within groups of 8 GPUs (``apex.parallel.create_syncbn_process_group(world_size // 8)``).
``torch.nn.SyncBatchNorm`` only runs on accelerators, so on CPU (and in the 2-process gloo test)
:class:`SyncBatchNorm` computes the batch moments with differentiable all-reduces of ``[sum x, count]`` and then of
``sum (x - mean)^2``; their autograd backward all-reduces the gradients of those moments,
which is the exact gradient of BN over the group's whole batch. On CUDA
:func:`convert_sync_batchnorm` uses PyTorch's fused implementation instead.

Shown in ``notebooks/03_swav_pretraining.py``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SyncBatchNorm", "convert_sync_batchnorm", "bn_process_group", "all_reduce_sum"]


class _AllReduceSum(torch.autograd.Function):
    """Sum over the group; the gradient of a sum over processes is the sum of the gradients."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, group: dist.ProcessGroup | None) -> Tensor:
        ctx.group = group
        y = x.clone()
        dist.all_reduce(y, op=dist.ReduceOp.SUM, group=group)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        g = grad.clone()
        dist.all_reduce(g, op=dist.ReduceOp.SUM, group=ctx.group)
        return g, None


def all_reduce_sum(x: Tensor, group: dist.ProcessGroup | None = None) -> Tensor:
    """Differentiable all-reduce (sum) of ``x`` over ``group``."""
    return _AllReduceSum.apply(x, group)


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training-time moments are taken over every process of ``process_group``.

    Accepts (N, C) and (N, C, ...) inputs. In eval mode, or without an initialised process
    group of more than one process, it is plain ``BatchNorm``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 process_group: dist.ProcessGroup | None = None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.process_group = process_group

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"SyncBatchNorm expects (N, C, ...) input, got {input.dim()}-D")

    def _world(self) -> int:
        if dist.is_available() and dist.is_initialized():
            return dist.get_world_size(self.process_group)
        return 1

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002 - nn.Module signature
        self._check_input_dim(input)
        if not self.training or self._world() == 1:
            return super().forward(input)
        c = input.shape[1]
        dims = [0] + list(range(2, input.dim()))
        x = input.float()
        shape = [1, c] + [1] * (input.dim() - 2)
        # Two passes (mean, then squared deviations), as accurate as BatchNorm's own moments.
        total = all_reduce_sum(torch.cat([x.sum(dims), x.new_tensor([x.numel() / c])]), self.process_group)
        n = total[-1]
        mean = total[:c] / n
        xc = x - mean.view(shape)
        var = all_reduce_sum((xc * xc).sum(dims), self.process_group) / n
        y = xc * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
                unbiased = var.detach() * n.detach() / (n.detach() - 1).clamp_min(1)
                self.running_mean.mul_(1 - m).add_(mean.detach() * m)
                self.running_var.mul_(1 - m).add_(unbiased * m)
        return y.to(input.dtype)


def bn_process_group(group_size: int) -> dist.ProcessGroup | None:
    """The process group this rank synchronises BN with: consecutive ranks in groups of ``group_size``.

    Collective: every rank must call it. Returns ``None`` (the whole world) when
    ``group_size`` covers the world or torch.distributed is not initialised.

    Raises:
        ValueError: the world size is not a multiple of ``group_size``.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return None
    world = dist.get_world_size()
    if group_size <= 0 or group_size >= world:
        return None
    if world % group_size:
        raise ValueError(f"sync_bn_group_size={group_size} does not divide the world size {world}")
    group, _ = dist.new_subgroups(group_size)
    return group


def convert_sync_batchnorm(module: nn.Module, process_group: dist.ProcessGroup | None = None,
                           device_type: str = "cpu") -> nn.Module:
    """Replace every BatchNorm layer of ``module`` by a synchronised one (weights and stats kept).

    Uses ``torch.nn.SyncBatchNorm`` on CUDA and :class:`SyncBatchNorm` elsewhere.
    """
    if device_type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module, process_group)
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, SyncBatchNorm):
        out = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, process_group)
        if module.affine:
            with torch.no_grad():
                out.weight = module.weight
                out.bias = module.bias
        out.running_mean = module.running_mean
        out.running_var = module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, convert_sync_batchnorm(child, process_group, device_type))
    return out
