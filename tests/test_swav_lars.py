"""LARS reproduces apex's LARC(clip=False) around SGD, as SwAV runs it."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from facelib.swav.lars import LARS, param_groups
from facelib.swav.reference import LARC


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3, bias=False))


def _run(opt_factory, net: nn.Module, steps: int = 6, zero_param: bool = False) -> nn.Module:
    opt = opt_factory(net)
    g = torch.Generator().manual_seed(1)
    if zero_param:
        with torch.no_grad():
            net[0].bias.zero_()  # ||w|| = 0 on the first step: no adaptation, no decay
    for i in range(steps):
        x = torch.randn(16, 6, generator=g)
        for group in opt.param_groups:
            group["lr"] = 4.8 * (i + 1) / steps
        opt.zero_grad()
        net(x).pow(2).mean().backward()
        if i == 0:
            net[3].weight.grad = None  # a frozen parameter (like the prototypes) is skipped
        opt.step()
    return net


@pytest.mark.parametrize("zero_param", [False, True])
def test_matches_apex_larc_around_sgd(zero_param: bool) -> None:
    wd = 1e-3  # large enough for the decay term to matter
    ours = _run(lambda n: LARS(n.parameters(), lr=0.1, momentum=0.9, weight_decay=wd,
                               trust_coefficient=0.001), _net(), zero_param=zero_param)
    ref = _run(lambda n: LARC(torch.optim.SGD(n.parameters(), lr=0.1, momentum=0.9, weight_decay=wd),
                              trust_coefficient=0.001, clip=False), _net(), zero_param=zero_param)
    for (name, a), b in zip(ours.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7, msg=name)


def test_excluded_groups_get_plain_sgd() -> None:
    net = _net()
    groups = param_groups(net, exclude_bias_bn=True)
    assert all(p.ndim > 1 for p in groups[0]["params"])
    assert all(p.ndim == 1 for p in groups[1]["params"]) and groups[1]["lars_exclude"]
    before = copy.deepcopy(net)
    opt = LARS(groups, lr=0.5, momentum=0.9, weight_decay=0.1)
    net(torch.randn(8, 6)).sum().backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    opt.step()
    for (n, p), (_, p0) in zip(net.named_parameters(), before.named_parameters()):
        if p.ndim == 1:  # bias / BN: p - lr * g exactly
            torch.testing.assert_close(p, p0 - 0.5 * grads[n])
        else:  # adapted: the step is much smaller than lr * g
            assert (p - p0).norm() < 0.5 * grads[n].norm()


def test_default_groups_adapt_everything() -> None:
    assert len(param_groups(_net())) == 1


def test_rejects_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="LARS"):
        LARS(_net().parameters(), lr=-1.0)
