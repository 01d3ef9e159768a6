"""The device multi-crop path against the CPU path: same distributions, same pixels for the same
draws, the batch contract, and the training loop with ``augment_on="device"``.

Statistical tests compare samples drawn with independent seeds on each side (two-sample
Kolmogorov-Smirnov at p > 0.001, a level that ~40 comparisons of equal distributions pass with
~96 % probability; binomial tolerances for rates); every seed is fixed, so the outcomes are
deterministic. Paired tests (the same seeds on both sides, hence the same draws) bound the
systematic differences far more tightly.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch
from scipy import stats
from skimage import data as skdata

from facelib import checkpoint, recipes
from facelib.swav import train as swav_train
from facelib.swav.device_multicrop import PLAN_COLUMNS, DeviceMultiCrop, multicrop_for
from facelib.swav.transforms import MultiCrop

torch.set_num_threads(1)

N_IMAGES = 150  # x 8 crops per path and test
SIZES = dict(size_crops=(48, 24))  # the paper's scales and photometry; small outputs keep tests quick
OFF = dict(hflip_p=0.0, color_jitter_p=0.0, grayscale_p=0.0, blur_p=0.0)


def _paths(**kw) -> tuple[MultiCrop, DeviceMultiCrop]:
    rec = recipes.pretrain("paper", **SIZES)
    cpu = dataclasses.replace(MultiCrop.from_recipe(rec), **kw)
    return cpu, DeviceMultiCrop(cpu, rec.input_size)


def _photo() -> np.ndarray:
    return cv2.resize(skdata.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)


def _coordinates() -> np.ndarray:
    """R = x and G = y of every pixel of a 256 x 256 image: crops reveal their box."""
    y, x = np.mgrid[0:256, 0:256]
    return np.stack([x, y, np.full_like(x, 128)], axis=-1).astype(np.uint8)


def _crops(path, img: np.ndarray, stream: int, n: int = N_IMAGES) -> list[list[np.ndarray]]:
    """Per image, the uint8 (3, s, s) crops; seeds (stream, i) so the two paths can be independent."""
    call = path.one if isinstance(path, DeviceMultiCrop) else path
    return [[c.numpy() for c in call(img, np.random.default_rng([stream, i]), normalize=False)]
            for i in range(n)]


def _ks(a, b) -> float:
    return float(stats.ks_2samp(np.asarray(a), np.asarray(b)).pvalue)


P_MIN = 0.001


def _rates_agree(k1: int, k2: int, n: int, p: float) -> None:
    """Both counts within 4.5 binomial standard deviations of n * p."""
    sd = np.sqrt(n * p * (1 - p))
    assert abs(k1 - n * p) < 4.5 * sd and abs(k2 - n * p) < 4.5 * sd, (k1, k2, n * p)


def _geometry(crop: np.ndarray) -> tuple[float, float, bool]:
    """(area fraction, log aspect ratio w/h, flipped) of a crop of :func:`_coordinates`."""
    s = crop.shape[-1]
    xs, ys = crop[0].astype(float), crop[1].astype(float)
    dx = (xs[:, -1].mean() - xs[:, 0].mean()) * s / (s - 1)
    dy = (ys[-1].mean() - ys[0].mean()) * s / (s - 1)
    return abs(dx) * dy / 256 ** 2, float(np.log(abs(dx) / dy)), bool(dx < 0)


def test_crop_scale_aspect_ratio_and_flip_rate_match_the_cpu_path() -> None:
    cpu, dev = _paths(**{**OFF, "hflip_p": 0.5})
    img = _coordinates()
    a, b = _crops(cpu, img, 1), _crops(dev, img, 2)
    for group, (lo, hi) in zip([slice(0, 2), slice(2, 8)], [(0.14, 1.0), (0.05, 0.14)]):
        ga = np.array([_geometry(c) for crops in a for c in crops[group]])
        gb = np.array([_geometry(c) for crops in b for c in crops[group]])
        for col, name in [(0, "area"), (1, "log aspect ratio")]:
            assert _ks(ga[:, col], gb[:, col]) > P_MIN, (group, name)
        # and both follow the recipe: scale within its range, ratio within 3/4 .. 4/3 (+ pixel rounding)
        for g in (ga, gb):
            assert lo * 0.93 < g[:, 0].min() and g[:, 0].max() < hi * 1.07
            assert np.abs(g[:, 1]).max() < np.log(4 / 3) + 0.06
            assert abs(g[:, 0].mean() - (lo + hi) / 2) < 0.06 * (hi - lo) + 0.02 * hi
        _rates_agree(int(ga[:, 2].sum()), int(gb[:, 2].sum()), len(ga), 0.5)


def test_same_draws_give_the_same_box_and_nearly_the_same_pixels() -> None:
    cpu, dev = _paths()
    for img in (_coordinates(), _photo()):
        a, b = _crops(cpu, img, 3, n=20), _crops(dev, img, 3, n=20)
        diffs = [np.abs(x.astype(int) - y.astype(int)).mean() for ca, cb in zip(a, b) for x, y in zip(ca, cb)]
        # the same boxes, flips, jitter factors and order, greyscale and sigma: the pixels differ by
        # interpolation and 8-bit HSV rounding only
        assert np.mean(diffs) < 1.0 and np.max(diffs) < 4.0, (np.mean(diffs), np.max(diffs))
    a, b = _crops(_paths(**OFF)[0], _coordinates(), 4, n=20), _crops(_paths(**OFF)[1], _coordinates(), 4, n=20)
    for ca, cb in zip(a, b):
        for x, y in zip(ca, cb):
            (sa, ra, _), (sb, rb, _) = _geometry(x), _geometry(y)
            assert sb == pytest.approx(sa, rel=0.04, abs=1e-3) and rb == pytest.approx(ra, abs=0.04)


def _channel_stats(crops: list[list[np.ndarray]]) -> np.ndarray:
    """(crops, 6): per-channel mean and std of every crop."""
    flat = [c.reshape(3, -1).astype(float) for cs in crops for c in cs]
    return np.array([np.concatenate([f.mean(axis=1), f.std(axis=1)]) for f in flat])


def test_colour_statistics_under_the_full_recipe_match() -> None:
    cpu, dev = _paths()  # flip, jitter p 0.8, greyscale p 0.2, blur p 0.5: the paper's recipe
    img = _photo()
    sa, sb = _channel_stats(_crops(cpu, img, 5)), _channel_stats(_crops(dev, img, 6))
    for col in range(6):
        assert _ks(sa[:, col], sb[:, col]) > P_MIN, col
        se = np.sqrt(sa[:, col].var() / len(sa) + sb[:, col].var() / len(sb))
        assert abs(sa[:, col].mean() - sb[:, col].mean()) < 4 * se, col
    # paired: the same draws on both paths shift no channel's mean or std by a grey level
    pa, pb = _channel_stats(_crops(cpu, img, 5, n=60)), _channel_stats(_crops(dev, img, 5, n=60))
    assert np.abs((pb - pa).mean(axis=0)).max() < 1.0, (pb - pa).mean(axis=0)


# Crops of the whole image (an unreachable scale falls back to the centre crop, here the whole
# square image): every crop has the same geometry, so a photometric op's effect is measured
# against the same crop without it.
WHOLE = dict(min_scale_crops=(1.0, 1.0), max_scale_crops=(1.0, 1.0))


def test_jitter_shifts_channel_means_and_stds_alike() -> None:
    """Per crop, the change of each channel's mean and std that colour jitter makes (against the
    same crop without jitter): the same distribution on both paths."""
    img = _photo()
    shifts = []
    for path_index, stream in [(0, 7), (1, 8)]:
        plain = _channel_stats(_crops(_paths(**OFF, **WHOLE)[path_index], img, stream))
        jitter = _channel_stats(_crops(_paths(**{**OFF, **WHOLE, "color_jitter_p": 1.0})[path_index], img, stream))
        shifts.append(jitter - plain)
    for col in range(6):
        assert np.abs(shifts[0][:, col]).mean() > 5  # jitter does move the statistics
        assert _ks(shifts[0][:, col], shifts[1][:, col]) > P_MIN, col


def test_greyscale_rate_matches() -> None:
    img = _photo()
    counts = []
    for path, stream in zip(_paths(**{**OFF, "color_jitter_p": 0.8, "grayscale_p": 0.2}), (9, 10)):
        crops = [c for cs in _crops(path, img, stream) for c in cs]
        counts.append(sum(bool((c[0] == c[1]).all() and (c[1] == c[2]).all()) for c in crops))
    _rates_agree(counts[0], counts[1], N_IMAGES * 8, 0.2)


def _sharpness(crops: list[list[np.ndarray]]) -> np.ndarray:
    return np.array([np.abs(np.diff(c.astype(float), axis=-1)).mean() for cs in crops for c in cs])


def test_blur_reduces_sharpness_alike() -> None:
    """Sharpness after / before the blur draw (p 0.5, sigma 0.1-2, 23 px kernel), same crops."""
    img = _photo()
    ratios = []
    for i, stream in [(0, 11), (1, 12)]:
        sharp = _sharpness(_crops(_paths(**OFF, **WHOLE)[i], img, stream))
        blurred = _sharpness(_crops(_paths(**{**OFF, **WHOLE, "blur_p": 0.5})[i], img, stream))
        ratios.append(blurred / sharp)
    assert _ks(ratios[0], ratios[1]) > P_MIN
    for r in ratios:
        assert 0.3 < (r < 0.9).mean() < 0.5  # about half blurred; the lowest sigmas barely blur
        assert (r <= 1.0 + 1e-9).all()


def test_normalised_output_matches_the_cpu_contract() -> None:
    cpu, dev = _paths(**OFF)
    img = np.full((256, 256, 3), (10, 128, 250), dtype=np.uint8)
    a = cpu(img, np.random.default_rng(0))
    b = dev.one(img, np.random.default_rng(0))
    assert [tuple(x.shape) for x in a] == [tuple(x.shape) for x in b] == [(3, 48, 48)] * 2 + [(3, 24, 24)] * 6
    assert all(x.dtype == y.dtype == torch.float32 for x, y in zip(a, b))
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-6)


def test_batches_of_differently_sized_images_and_bad_input() -> None:
    cpu, dev = _paths()
    planner = dev.planner
    items = [planner(np.zeros((h, w, 3), np.uint8), np.random.default_rng(i))
             for i, (h, w) in enumerate([(256, 256), (300, 200), (120, 140)])]
    assert all(tuple(im.shape) == (256, 256, 3) and im.dtype == torch.uint8 for im, _ in items)
    assert all(tuple(p.shape) == (8, len(PLAN_COLUMNS)) for _, p in items)
    images, plans = torch.stack([im for im, _ in items]), torch.stack([p for _, p in items])
    out = dev(images, plans)
    assert [tuple(c.shape) for c in out] == [(3, 3, 48, 48)] * 2 + [(3, 3, 24, 24)] * 6
    with pytest.raises(ValueError, match="uint8"):
        dev(images.float(), plans)
    with pytest.raises(ValueError, match="plans"):
        dev(images, plans[:, :5])


def test_recipe_field_chooses_the_path() -> None:
    rec = recipes.pretrain("paper")
    assert rec.augment_on == "loader" and recipes.pretrain("demo").augment_on == "loader"
    item, device_crops = multicrop_for(rec)
    assert isinstance(item, MultiCrop) and device_crops is None
    item, device_crops = multicrop_for(recipes.pretrain("paper", augment_on="device"))
    assert isinstance(device_crops, DeviceMultiCrop) and item == device_crops.planner
    with pytest.raises(ValueError, match="augment_on"):
        multicrop_for(recipes.pretrain("paper", augment_on="gpu"))


TINY = dict(arch="resnet18", batch_size=8, epochs=2, warmup_epochs=1, num_prototypes=12, hidden_mlp=32,
            feat_dim=16, nmb_crops=(2, 2), size_crops=(32, 16), input_size=40, train_images=0,
            freeze_prototypes_iters=2, queue_length=0, augment_on="device")


def test_training_with_device_augmentation_resumes_exactly(tmp_path) -> None:
    steps_a: list[float] = []
    steps_b: list[float] = []
    swav_train.train(recipes.pretrain("demo", **TINY), _images(), tmp_path / "c", amp="off", progress=False,
                     on_iteration=lambda r: steps_a.append(r["loss"]))
    swav_train.train(recipes.pretrain("demo", **TINY), _images(), tmp_path / "d", amp="off", progress=False,
                     until_epoch=1, on_iteration=lambda r: steps_b.append(r["loss"]))
    swav_train.train(recipes.pretrain("demo", **TINY), _images(), tmp_path / "d", amp="off", progress=False,
                     resume=True, on_iteration=lambda r: steps_b.append(r["loss"]))
    assert steps_a == steps_b and len(steps_a) == 4 and np.isfinite(steps_a).all()
    with pytest.raises(ValueError, match="augment_on"):  # the augmentation path is part of the recipe
        swav_train.train(recipes.pretrain("demo", **{**TINY, "augment_on": "loader"}), _images(),
                         tmp_path / "d", amp="off", progress=False, resume=True)


def test_a_checkpoint_from_before_the_field_existed_still_resumes(tmp_path) -> None:
    rec = recipes.pretrain("demo", **{**TINY, "augment_on": "loader"})
    swav_train.train(rec, _images(), tmp_path, amp="off", progress=False, until_epoch=1)
    ckpt = tmp_path / swav_train.CHECKPOINT_NAME
    state = checkpoint.load(ckpt)
    del state["recipe"]["augment_on"]
    checkpoint.save(state, ckpt)
    result = swav_train.train(rec, _images(), tmp_path, amp="off", progress=False, resume=True)
    assert result.finished


def _images() -> list[np.ndarray]:
    return [np.random.default_rng(i).integers(0, 256, (40, 40, 3), dtype=np.uint8) for i in range(16)]
