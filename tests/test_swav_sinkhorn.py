"""Sinkhorn-Knopp: agrees with the official algorithm, keeps its marginals, never overflows."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from facelib.swav.reference import distributed_sinkhorn
from facelib.swav.sinkhorn import sinkhorn, sinkhorn_log


def _scores(b: int = 64, k: int = 30, d: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = F.normalize(torch.randn(b, d, generator=g), dim=1)
    c = F.normalize(torch.randn(k, d, generator=g), dim=1)
    return z @ c.t()


@pytest.mark.parametrize("iters", [0, 1, 3, 7])
@pytest.mark.parametrize("shape", [(64, 30), (16, 100), (300, 7)])
def test_matches_official_algorithm(iters: int, shape: tuple[int, int]) -> None:
    s = _scores(*shape)
    ours = sinkhorn(s, iters, 0.05)
    ref = distributed_sinkhorn(s, 0.05, iters)
    assert torch.isfinite(ref).all()
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)


def test_rows_sum_to_one_and_prototypes_share_the_batch() -> None:
    s = _scores(128, 16)
    q = sinkhorn(s, num_iters=200, eps=0.05)
    torch.testing.assert_close(q.sum(dim=1), torch.ones(128), rtol=0, atol=1e-5)
    # At convergence each prototype receives B / K of the mass.
    torch.testing.assert_close(q.sum(dim=0), torch.full((16,), 128 / 16), rtol=1e-3, atol=0)
    assert (q >= 0).all()


def test_no_overflow_where_the_original_overflows() -> None:
    s = _scores(64, 30) * 6.0  # exp(6 / 0.05) = exp(120) overflows float32
    ref32 = distributed_sinkhorn(s, 0.05, 3)
    assert not torch.isfinite(ref32).all()  # the original breaks here
    ours = sinkhorn(s, 3, 0.05)
    assert torch.isfinite(ours).all()
    ref64 = distributed_sinkhorn(s.double(), 0.05, 3)  # float64 holds exp(120)
    torch.testing.assert_close(ours, ref64.float(), rtol=0, atol=1e-6)


def test_half_precision_scores_are_handled_in_float32() -> None:
    s = _scores(32, 12)
    ours = sinkhorn(s.half(), 3, 0.05)
    assert ours.dtype == torch.float32 and torch.isfinite(ours).all()
    torch.testing.assert_close(ours, distributed_sinkhorn(s.half().float(), 0.05, 3), rtol=0, atol=1e-6)


def test_extreme_scores_fall_back_to_the_log_domain() -> None:
    s = _scores(32, 12)
    s[0] -= 30.0  # this sample is ~600 eps below every prototype maximum: float32 exp underflows
    assert torch.isnan(distributed_sinkhorn(s, 0.05, 3)).any()  # the original: 0 / 0
    q = sinkhorn(s, 3, 0.05)
    assert torch.isfinite(q).all()
    torch.testing.assert_close(q.sum(dim=1), torch.ones(32), rtol=0, atol=1e-5)
    torch.testing.assert_close(q, sinkhorn_log(s, 3, 0.05), rtol=0, atol=1e-6)
    # float64 holds exp(-600): there the original is finite and must agree.
    torch.testing.assert_close(q, distributed_sinkhorn(s.double(), 0.05, 3).float(), rtol=0, atol=1e-6)


def test_log_domain_matches_linear_domain() -> None:
    s = _scores(50, 20, seed=3)
    torch.testing.assert_close(sinkhorn_log(s, 3, 0.05), sinkhorn(s, 3, 0.05), rtol=0, atol=1e-6)


def test_does_not_modify_its_input() -> None:
    s = _scores(8, 5)
    before = s.clone()
    sinkhorn(s)
    assert torch.equal(s, before)


@pytest.mark.parametrize("bad", [torch.zeros(3), torch.zeros(0, 4), torch.zeros(2, 3, 4)])
def test_rejects_non_matrices(bad: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="scores"):
        sinkhorn(bad)


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="eps"):
        sinkhorn(_scores(4, 3), eps=0.0)
    with pytest.raises(ValueError, match="num_iters"):
        sinkhorn(_scores(4, 3), num_iters=-1)
