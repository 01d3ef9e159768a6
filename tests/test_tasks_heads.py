"""Heads, targets, losses and decoding of the five tasks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facelib import metrics, recipes
from facelib.data import synth
from facelib.tasks import finetune as FT
from facelib.tasks.emotion import ccc_loss, emotion_loss
from facelib.tasks.landmarks import decode_heatmaps, from_heatmap, gaussian_heatmaps, to_heatmap
from facelib.tasks.recognition import CosFace, image_pairs, template_pairs

torch.set_num_threads(1)


def test_heatmap_decoding_is_subpixel_exact():
    rng = np.random.default_rng(0)
    pts = rng.uniform(2, 13, size=(68, 2))
    hm = gaussian_heatmaps(pts, 16, 1.5)
    assert hm.shape == (68, 16, 16) and hm.max() <= 1.0
    dec = decode_heatmaps(hm[None].astype(np.float64))[0]
    np.testing.assert_allclose(dec, pts, atol=1e-3)  # float32 heatmaps; exact in float64 up to rounding
    hm64 = np.exp(-((np.arange(16)[None, :] - 7.3) ** 2 + (np.arange(16)[:, None] - 4.6) ** 2) / (2 * 1.5**2))
    np.testing.assert_allclose(decode_heatmaps(hm64[None, None])[0, 0], [7.3, 4.6], atol=1e-9)


def test_heatmap_coordinates_round_trip():
    p = np.array([[0.0, 0.0], [63.0, 31.5]])
    np.testing.assert_allclose(from_heatmap(to_heatmap(p, 64, 16), 64, 16), p)
    # pixel centres: the centre of heatmap pixel 0 is the centre of input pixels 0-3 (1.5)
    np.testing.assert_allclose(from_heatmap(np.zeros((1, 2)), 64, 16), [[1.5, 1.5]])


def test_cosface_logits_formula():
    torch.manual_seed(0)
    head = CosFace(8, 5, margin=0.35, scale=64.0)
    emb, labels = torch.randn(4, 8), torch.tensor([0, 3, 4, 3])
    logits = head.logits(emb, labels)
    w = head.weight / head.weight.norm(dim=1, keepdim=True)
    cos = (emb / emb.norm(dim=1, keepdim=True)) @ w.T
    expect = 64.0 * cos
    expect[torch.arange(4), labels] -= 64.0 * 0.35
    torch.testing.assert_close(logits, expect)
    assert head(emb, labels) > torch.nn.functional.cross_entropy(64.0 * cos, labels)


def test_ccc_loss_matches_metric():
    rng = np.random.default_rng(1)
    p, g = rng.normal(size=50), rng.normal(size=50)
    loss = ccc_loss(torch.tensor(p), torch.tensor(g)).item()
    assert loss == pytest.approx(1 - metrics.ccc(p, g), abs=1e-12)
    out = torch.zeros(4, 10)
    out[:, 2] = 10.0
    val = emotion_loss(out, torch.zeros(4), torch.zeros(4), torch.zeros(4, dtype=torch.long))
    # perfect class, zero errors, CCC undefined on constants -> 1 - 0 = 1 for each of v, a
    assert val.item() == pytest.approx(2.0, abs=1e-3)


@pytest.mark.parametrize("name", sorted(FT.TASK_CLASSES))
def test_each_task_prepares_trains_and_predicts(name):
    task = FT.make_task(name, "demo", num_classes=4)
    img, labels = synth.render(0, 0, 96, 4)
    x, target, aug = task.prepare(img, labels, np.random.default_rng(0))
    s = task.input_size
    assert x.shape == (3, s, s) and x.dtype == np.float32 and aug.shape == (s, s, 3)
    x2, target2, _ = task.prepare(img, labels, np.random.default_rng(0))
    np.testing.assert_array_equal(x, x2)
    from facelib.tasks.backbone import FaceModel, build_trunk, feature_shape
    trunk, _ = build_trunk("resnet18", "random")
    c, side = feature_shape(trunk, s)
    model = FaceModel(trunk, task.build_head(c, side))
    batch = torch.utils.data.default_collate([(x, target), (x2, target2)])
    out = model(batch[0])
    loss = task.loss(model, out, batch[1])
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    pred = task.predict(out)
    assert all(len(v) == 2 for v in pred.values())


@pytest.mark.parametrize("name", sorted(FT.TASK_CLASSES))
def test_eval_targets_are_the_evaluation_crops_targets_without_the_pixels(name):
    task = FT.make_task(name, "demo", num_classes=4)
    for index in range(3):
        img, labels = synth.render(index, 0, 96, 4)
        want = task.prepare(img, labels, None)[1]
        got = task.eval_targets(labels)
        assert got.keys() == want.keys()
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


def test_landmark_targets_follow_the_crop():
    task = FT.make_task("landmarks", "demo")
    img, labels = synth.render(5, 0, 96)
    _, target, _ = task.prepare(img, labels, None)
    dec = from_heatmap(decode_heatmaps(target["heatmaps"][None].astype(np.float64))[0], task.input_size,
                       task.recipe.heatmap_size)
    np.testing.assert_allclose(dec, target["points"], atol=0.05)


def test_pairs_and_templates():
    ident = np.repeat(np.arange(4), 3)
    pairs, same = image_pairs(ident)
    assert same.sum() == 4 * 3 and (same == 0).sum() == 12
    np.testing.assert_array_equal(ident[pairs[:, 0]] == ident[pairs[:, 1]], same.astype(bool))
    temps, tid = template_pairs(np.random.default_rng(0).normal(size=(12, 5)), ident)
    assert temps.shape == (8, 5) and list(tid) == [0, 0, 1, 1, 2, 2, 3, 3]
    np.testing.assert_allclose(np.linalg.norm(temps, axis=1), 1.0)


@pytest.mark.parametrize("name", ["au", "emotion", "recon3d"])
def test_heads_start_as_the_mean_predictor(name):
    # head_init "mean target": whatever the image, the untrained model predicts the training
    # targets' mean (the most frequent expression for the classes), i.e. the trivial baseline.
    # Set explicitly: the AU demo recipe starts from a random head (a documented exception).
    task = FT.make_task(name, "demo", {"head_init": "mean target"})
    data = FT.DataSpec(n_train=12, n_test=4, size=64, num_identities=3)
    train, test = data.build(name)
    targets = FT.collate_targets([task.prepare(*train[i], None)[1] for i in range(len(train))])
    from facelib.tasks.backbone import FaceModel, build_trunk, feature_shape
    trunk, _ = build_trunk("resnet18", "random")
    c, side = feature_shape(trunk, task.input_size)
    head = task.build_head(c, side)
    assert task.wants_train_targets() and task.init_head(head, targets)
    model = FaceModel(trunk, head).eval()
    x = torch.stack([torch.from_numpy(task.prepare(*test[i], None)[0]) for i in range(len(test))])
    with torch.no_grad():
        pred = task.predict(model(x))
    want = task.mean_prediction(targets, len(test))
    for key in want:
        if key == "logits":
            assert (pred[key].argmax(1) == want[key].argmax(1)).all()
        else:
            np.testing.assert_allclose(pred[key], want[key], rtol=1e-5, atol=1e-5)
    # "default" keeps PyTorch's random head: its predictions depend on the image
    random_task = FT.make_task(name, "demo", {"head_init": "default"})
    if name != "recon3d":
        assert not random_task.wants_train_targets()
    # the paper recipes start every head as the mean predictor
    assert recipes.task(name, "paper").head_init == "mean target"


def test_recon3d_loss_is_standardised_per_axis():
    task = FT.make_task("recon3d", "demo")
    head = task.build_head(8, 2)
    coords = np.random.default_rng(0).normal(size=(20, 68, 3)) * [0.2, 0.1, 0.05]
    coords[:, :, 2] = np.nan  # no depth (300W-LP): mean 0, std 1 on z
    head.set_standardisation(coords)
    std = head.std.view(68, 3)
    assert torch.allclose(std[:, 0], torch.tensor(np.nanstd(coords[:, :, 0]), dtype=std.dtype))
    assert torch.allclose(std[:, 1], torch.tensor(np.nanstd(coords[:, :, 1]), dtype=std.dtype))
    assert (std[:, 2] == 1).all() and (head.mean.view(68, 3)[:, 2] == 0).all()
    model = torch.nn.Module()
    model.head = head
    t = torch.zeros(2, 68, 3)
    out = torch.zeros(2, 204)
    out.view(2, 68, 3)[:, :, 0] = std[:, 0]  # one std off on x, exact on y and z
    loss = task.loss(model, out, {"coords": t})
    assert loss.item() == pytest.approx(1 / 3, rel=1e-5)


def test_synthetic_sets_are_rendered_once_and_protected():
    data = FT.DataSpec(n_train=3, n_test=2, size=64, num_identities=2)
    a, _ = data.build()
    b, _ = data.build()
    assert a is b  # the runs of a page share the rendered faces
    img, labels = a[1]
    ref_img, ref_labels = synth.render(1, data.seed, 64, 2)
    np.testing.assert_array_equal(img, ref_img)
    np.testing.assert_array_equal(labels["landmarks_2d"], ref_labels["landmarks_2d"])
    with pytest.raises(ValueError):
        img[0, 0, 0] = 1  # read-only
    labels["landmarks_2d"][:] = 0  # a copy: the cached labels are untouched
    np.testing.assert_array_equal(a[1][1]["landmarks_2d"], ref_labels["landmarks_2d"])
    assert a[-1][1]["identity"] == 0
