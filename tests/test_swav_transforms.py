"""Multi-crop: recipe values, crop geometry, PIL-equivalent colour ops, determinism, bad input."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from facelib import recipes
from facelib.swav import transforms as T
from facelib.swav.transforms import MultiCrop, random_resized_crop_params


def _image(size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)


def _plain(recipe=None, **kw) -> MultiCrop:
    """The recipe's multi-crop with every random photometric op switched off."""
    mc = MultiCrop.from_recipe(recipe or recipes.pretrain("paper"))
    args = dict(hflip_p=0.0, color_jitter_p=0.0, grayscale_p=0.0, blur_p=0.0)
    args.update(kw)
    return dataclasses.replace(mc, **args)


def test_paper_recipe_gives_2x224_and_6x96() -> None:
    mc = MultiCrop.from_recipe(recipes.pretrain("paper"))
    crops = mc(_image(256), np.random.default_rng(0))
    assert [tuple(c.shape) for c in crops] == [(3, 224, 224)] * 2 + [(3, 96, 96)] * 6
    assert all(c.dtype == torch.float32 for c in crops)
    assert mc.crop_sizes == [224, 224] + [96] * 6
    assert mc.std == (0.228, 0.224, 0.225) and mc.blur_kernel_size == 23
    assert mc.color_jitter == (0.8, 0.8, 0.8, 0.2) and mc.min_scale_crops == (0.14, 0.05)


def test_same_generator_same_crops_and_different_otherwise() -> None:
    mc = MultiCrop.from_recipe(recipes.pretrain("demo"))
    img = _image()
    a = mc(img, np.random.default_rng([1, 2, 3]))
    b = mc(img, np.random.default_rng([1, 2, 3]))
    c = mc(img, np.random.default_rng([1, 2, 4]))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_normalisation_of_a_constant_image() -> None:
    img = np.full((64, 64, 3), (10, 128, 250), dtype=np.uint8)
    crop = _plain()(img, np.random.default_rng(0))[2]
    expected = [(v / 255 - m) / s for v, m, s in zip((10, 128, 250), (0.485, 0.456, 0.406),
                                                       (0.228, 0.224, 0.225))]
    for ch in range(3):
        torch.testing.assert_close(crop[ch], torch.full((96, 96), expected[ch]), rtol=0, atol=1e-5)


def test_crop_box_follows_torchvision_rules() -> None:
    rng = np.random.default_rng(0)
    for scale in [(0.14, 1.0), (0.05, 0.14)]:
        areas = []
        for _ in range(300):
            i, j, h, w = random_resized_crop_params(200, 160, scale, rng)
            assert 0 <= i and i + h <= 200 and 0 <= j and j + w <= 160
            assert 3 / 4 - 0.05 <= w / h <= 4 / 3 + 0.05
            areas.append(h * w / (200 * 160))
        assert scale[0] - 0.01 <= min(areas) and max(areas) <= scale[1] + 0.01
    # Impossible scale: the centre crop fallback, clipped to the allowed aspect ratio.
    import torchvision.transforms as tvt
    expected = tvt.RandomResizedCrop.get_params(torch.zeros(3, 100, 400), [5.0, 6.0], [3 / 4, 4 / 3])
    assert random_resized_crop_params(100, 400, (5.0, 6.0), rng) == tuple(expected) == (0, 133, 100, 133)


def test_full_crop_and_flip() -> None:
    img = _image(48)
    rec = recipes.pretrain("paper", nmb_crops=(1,), size_crops=(48,), min_scale_crops=(1.0,),
                           max_scale_crops=(1.0,))
    same = _plain(rec)(img, np.random.default_rng(0), normalize=False)[0]
    flipped = _plain(rec, hflip_p=1.0)(img, np.random.default_rng(0), normalize=False)[0]
    assert torch.equal(same, torch.from_numpy(img).permute(2, 0, 1))
    assert torch.equal(flipped, same.flip(-1))


def test_grayscale_makes_channels_equal() -> None:
    crop = _plain(grayscale_p=1.0)(_image(), np.random.default_rng(0), normalize=False)[0]
    assert torch.equal(crop[0], crop[1]) and torch.equal(crop[1], crop[2])


def test_blur_smooths() -> None:
    img = _image()
    sharp = _plain()(img, np.random.default_rng(0), normalize=False)[0].float()
    blurred = _plain(blur_p=1.0)(img, np.random.default_rng(0), normalize=False)[0].float()
    assert blurred.diff(dim=-1).abs().mean() < sharp.diff(dim=-1).abs().mean()


@pytest.mark.parametrize("name,factor", [("brightness", 1.6), ("brightness", 0.3), ("contrast", 1.7),
                                         ("contrast", 0.2), ("saturation", 1.8), ("saturation", 0.3)])
def test_colour_ops_match_pil(name: str, factor: float) -> None:
    img = _image()
    ours = getattr(T, f"adjust_{name}")(img, factor).astype(int)
    ref = np.asarray(getattr(TF, f"adjust_{name}")(Image.fromarray(img), factor)).astype(int)
    assert np.abs(ours - ref).max() <= 2


@pytest.mark.parametrize("factor", [0.15, -0.2])
def test_hue_matches_pil_up_to_hsv_rounding(factor: float) -> None:
    img = _image()
    ours = T.adjust_hue(img, factor).astype(int)
    ref = np.asarray(TF.adjust_hue(Image.fromarray(img), factor)).astype(int)
    d = np.abs(ours - ref)
    # 8-bit HSV round trips lose up to ~8 levels on saturated colours, in PIL and in OpenCV alike.
    assert d.mean() < 1.5 and np.percentile(d, 99) <= 8
    assert np.abs(ours - img.astype(int)).mean() > 5  # it did rotate the hue


def test_accepts_tensors_and_pil() -> None:
    img = _image()
    mc = _plain()
    a = mc(img, np.random.default_rng(0))
    b = mc(torch.from_numpy(img).permute(2, 0, 1), np.random.default_rng(0))
    c = mc(Image.fromarray(img), np.random.default_rng(0))
    assert all(torch.equal(x, y) and torch.equal(x, z) for x, y, z in zip(a, b, c))


@pytest.mark.parametrize("bad,match", [
    (np.zeros((32, 32, 3), np.float32), "uint8"),
    (np.zeros((32, 32, 4), np.uint8), "RGB"),
    (np.zeros((32, 32), np.uint8), "RGB"),
    (np.zeros((1, 32, 3), np.uint8), "too small"),
    ("not an image", "expected an RGB uint8 image"),
])
def test_bad_images_are_rejected(bad, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _plain()(bad, np.random.default_rng(0))


def test_inconsistent_recipe_is_rejected() -> None:
    with pytest.raises(ValueError, match="equal length"):
        MultiCrop.from_recipe(recipes.pretrain("paper", nmb_crops=(2, 6, 1)))
