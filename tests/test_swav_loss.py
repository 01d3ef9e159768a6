"""The SwAV loss agrees with the official loss block, in value and gradient; the queue works."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from facelib.swav import reference
from facelib.swav.loss import SwAVLoss, swapped_prediction_loss
from facelib.swav.sinkhorn import sinkhorn


def _batch(b: int = 12, v: int = 8, k: int = 20, d: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    emb = F.normalize(torch.randn(v * b, d, generator=g), dim=1)
    protos = F.normalize(torch.randn(k, d, generator=g), dim=1)
    return emb, protos


@pytest.mark.parametrize("nmb_crops,assign", [((2, 6), (0, 1)), ((2,), (0, 1)), ((2, 2), (0,))])
def test_loss_and_gradient_match_the_official_code(nmb_crops, assign) -> None:
    v = sum(nmb_crops)
    emb, protos = _batch(v=v)
    s1 = (emb @ protos.t()).requires_grad_(True)
    s2 = s1.detach().clone().requires_grad_(True)
    crit = SwAVLoss(num_crops=v, crops_for_assign=assign, feat_dim=16)
    ours = crit(emb, s1, protos).loss
    ref = reference.swav_loss(s2, 12, nmb_crops, assign, 0.1, 0.05, 3)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(s1.grad, s2.grad, rtol=1e-5, atol=1e-7)


def test_loss_of_perfect_predictions_is_the_code_entropy() -> None:
    # If every crop predicts exactly the codes, the cross-entropy equals the codes' entropy.
    q = torch.softmax(torch.randn(5, 7), dim=1)
    scores = torch.log(q).repeat(3, 1) * 0.1  # softmax(scores / 0.1) == q for every crop
    loss = swapped_prediction_loss(scores, [q], (0,), temperature=0.1)
    entropy = -(q * q.log()).sum(dim=1).mean()
    torch.testing.assert_close(loss, entropy)


def test_queue_starts_at_its_epoch_and_is_used_only_when_full() -> None:
    b, v, k, d = 4, 3, 10, 8
    crit = SwAVLoss(num_crops=v, crops_for_assign=(0, 1), feat_dim=d, queue_length=10,
                    epoch_queue_starts=1, batch_size=b)
    assert crit.queue_length == 8  # rounded down to a multiple of the batch
    crit.start_epoch(0)
    assert crit.queue.numel() == 0
    crit.start_epoch(1)
    assert crit.queue.shape == (2, 8, d)
    batches = [_batch(b, v, k, d, seed=i) for i in range(3)]
    protos = batches[0][1]
    outs = [crit(e, e @ protos.t(), protos) for e, _ in batches]
    # Steps 1 and 2 fill the queue (codes from the batch alone); step 3 uses it.
    e0 = batches[0][0]
    torch.testing.assert_close(outs[0].codes[0], sinkhorn((e0 @ protos.t())[:b]))
    e2 = batches[2][0]
    queued = torch.cat([batches[1][0][:b], batches[0][0][:b]])  # newest first
    expected = sinkhorn(torch.cat([queued @ protos.t(), (e2 @ protos.t())[:b]]))[-b:]
    torch.testing.assert_close(outs[2].codes[0], expected)
    assert not torch.allclose(outs[2].codes[0], sinkhorn((e2 @ protos.t())[:b]))


def test_queue_is_saved_and_restored() -> None:
    crit = SwAVLoss(num_crops=3, feat_dim=8, queue_length=8, epoch_queue_starts=0, batch_size=4)
    crit.start_epoch(0)
    e, p = _batch(4, 3, 10, 8)
    crit(e, e @ p.t(), p)
    fresh = SwAVLoss(num_crops=3, feat_dim=8, queue_length=8, epoch_queue_starts=0, batch_size=4)
    fresh.load_state_dict(crit.state_dict())
    assert torch.equal(fresh.queue, crit.queue) and int(fresh.queue_filled) == 4


def test_reports_entropy_and_assignments() -> None:
    e, p = _batch(6, 4, 5, 8)
    out = SwAVLoss(num_crops=4, feat_dim=8)(e, e @ p.t(), p)
    assert out.assignments.shape == (12,)
    assert 0 < float(out.code_entropy) <= torch.log(torch.tensor(5.0)) + 1e-6


def test_bad_shapes_are_rejected() -> None:
    e, p = _batch(4, 3, 10, 8)
    with pytest.raises(ValueError, match="multiple"):
        SwAVLoss(num_crops=5, feat_dim=8)(e, e @ p.t(), p)
    with pytest.raises(ValueError, match="at least 2 crops"):
        swapped_prediction_loss(torch.randn(4, 3), [torch.rand(4, 3)], (0,))
