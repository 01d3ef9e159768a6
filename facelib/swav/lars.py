"""LARS (You et al., arXiv:1708.03888) as SwAV runs it: apex ``LARC(clip=False)`` around SGD.

For every parameter with ``||w|| > 0`` and ``||g|| > 0`` the gradient becomes
``(g + wd * w) * eta * ||w|| / (||g|| + wd * ||w|| + 1e-8)``; otherwise it is left as is
(and, as in apex, gets no weight decay). Then SGD with momentum (no dampening, no Nesterov)
takes the step with the scheduled learning rate. Supplement 1.1: LARS, weight decay 1e-6;
SwAV's code: momentum 0.9, trust coefficient eta = 0.001.

Parameter groups with ``lars_exclude=True`` (see :func:`param_groups`) get neither the
adaptation nor weight decay, the common variant; the original adapts and decays every parameter.

Shown in ``notebooks/03_swav_pretraining.py``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import Tensor, nn

__all__ = ["LARS", "param_groups"]


def param_groups(model: nn.Module, exclude_bias_bn: bool = False) -> list[dict[str, Any]]:
    """Parameter groups for :class:`LARS`.

    Args:
        model: the network.
        exclude_bias_bn: put biases and normalisation weights (every 1-D parameter) in a group
            without adaptation or weight decay.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not exclude_bias_bn:
        return [{"params": params}]
    regular = [p for p in params if p.ndim > 1]
    excluded = [p for p in params if p.ndim <= 1]
    return [{"params": regular}, {"params": excluded, "lars_exclude": True, "weight_decay": 0.0}]


class LARS(torch.optim.Optimizer):
    """Layer-wise adaptive rate scaling around SGD with momentum.

    Args:
        params: parameters or parameter groups (a group may set ``lars_exclude=True``).
        lr: learning rate (set per iteration by the schedule).
        momentum: SGD momentum (0.9).
        weight_decay: L2 weight decay (1e-6), folded into the gradient before adaptation.
        trust_coefficient: eta (0.001).
        eps: added to the denominator (1e-8, apex's value).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 0.001,
        eps: float = 1e-8,
    ) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0 or trust_coefficient <= 0:
            raise ValueError(
                f"LARS: invalid lr={lr}, momentum={momentum}, weight_decay={weight_decay} "
                f"or trust_coefficient={trust_coefficient}")
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                        trust_coefficient=trust_coefficient, eps=eps, lars_exclude=False)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            wd, eta, eps = group["weight_decay"], group["trust_coefficient"], group["eps"]
            if group["lars_exclude"]:
                updates = grads
            else:
                w_norm = torch.stack(torch._foreach_norm(params))
                g_norm = torch.stack(torch._foreach_norm(grads))
                adapt = (w_norm > 0) & (g_norm > 0)
                rate = torch.where(adapt, eta * w_norm / (g_norm + w_norm * wd + eps), 1.0)
                decay = torch.where(adapt, wd, 0.0)
                updates = [(g + decay[i] * p) * rate[i] for i, (p, g) in enumerate(zip(params, grads))]
            lr, mom = group["lr"], group["momentum"]
            for p, d in zip(params, updates):
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if mom == 0:
                    buf = d
                elif buf is None:
                    buf = torch.clone(d).detach()
                    state["momentum_buffer"] = buf
                else:
                    buf.mul_(mom).add_(d)
                p.add_(buf, alpha=-lr)
        return loss
