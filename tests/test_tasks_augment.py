"""Augmentations: geometry applied consistently to images and landmarks; mirror permutations."""

from __future__ import annotations

import numpy as np
import pytest

from facelib.data import synth
from facelib.tasks import augment as A


@pytest.mark.parametrize("perm", [A.MIRROR_68, A.MIRROR_98])
def test_mirror_permutations_are_involutions(perm):
    assert sorted(perm) == list(range(len(perm)))
    np.testing.assert_array_equal(perm[perm], np.arange(len(perm)))


def test_flip_keeps_left_right_semantics():
    # synthetic faces use the iBUG layout: 36 is the image-left outer eye corner, 0 the
    # image-left end of the jaw, 48 the image-left mouth corner
    _, labels = synth.render(3, seed=0, size=128)
    pts = labels["landmarks_2d"]
    geo = A.Geometry(hflip_p=1.0)
    m, flipped = A.random_matrix(np.random.default_rng(0), 128, geo)
    assert flipped
    out = A.transform_points(pts, m, flipped)
    for left, right in ((36, 45), (0, 16), (48, 54), (17, 26), (31, 35)):
        assert pts[left, 0] < pts[right, 0]
        assert out[left, 0] < out[right, 0]
    # the flip mirrors x about the centre line and keeps y
    np.testing.assert_allclose(out[A.MIRROR_68, 0], 127 - pts[:, 0], atol=1e-9)
    np.testing.assert_allclose(out[A.MIRROR_68, 1], pts[:, 1], atol=1e-9)


def test_points_follow_the_warped_image():
    # one bright pixel: after a random rotation/scale/translation/flip it must land where the
    # matrix sends its coordinates
    img = np.zeros((96, 96, 3), np.uint8)
    img[30, 40] = 255
    geo = A.Geometry(rotation_deg=30, scale_range=(0.85, 1.15), translation=0.1, hflip_p=0.5)
    for seed in range(6):
        crop = A.box_crop_matrix(np.array([20.0, 10.0, 80.0, 70.0]), 64, 256 / 190)
        rnd, flipped = A.random_matrix(np.random.default_rng(seed), 64, geo)
        m = A.compose(rnd, crop)
        out = A.warp(img, m, 64).astype(float)[..., 0]
        expect = A.transform_points(np.array([[40.0, 30.0]]), m)[0]
        ys, xs = np.mgrid[:64, :64]
        centroid = np.array([(out * xs).sum(), (out * ys).sum()]) / out.sum()
        np.testing.assert_allclose(centroid, expect, atol=0.35)


def test_box_crop_centres_the_box():
    box = np.array([10.0, 20.0, 50.0, 80.0])
    m = A.box_crop_matrix(box, 64, 256 / 190)
    c = A.transform_points(np.array([[30.0, 50.0]]), m)[0]
    np.testing.assert_allclose(c, [31.5, 31.5])
    # the crop side is max(w, h) * 256/190: the box height spans 190/256 of the output
    top, bottom = A.transform_points(np.array([[30.0, 20.0], [30.0, 80.0]]), m)
    assert bottom[1] - top[1] == pytest.approx(64 * 190 / 256)


def test_3d_points_scale_z_and_mirror_x_only():
    pts = np.array([[10.0, 20.0, 5.0]] * 68)
    m = np.array([[-2.0, 0.0, 100.0], [0.0, 2.0, 0.0]])  # mirror and scale 2
    out = A.transform_points(pts, m)
    np.testing.assert_allclose(out[0], [80.0, 40.0, 10.0])


def test_blur_and_jitter_are_seeded_and_bounded():
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    a = A.color_jitter(img, np.random.default_rng(5), (0.4, 0.4, 0.4, 0.1))
    b = A.color_jitter(img, np.random.default_rng(5), (0.4, 0.4, 0.4, 0.1))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.uint8 and not np.array_equal(a, img)
    assert A.gaussian_blur(img, np.random.default_rng(0), (5, 10), p=0.0) is img
    blurred = A.gaussian_blur(img, np.random.default_rng(0), (5, 10), p=1.0)
    assert blurred.std() < img.std()


def test_unknown_layout_has_no_mirror():
    with pytest.raises(ValueError, match="no mirror permutation for 29"):
        A.mirror_permutation(29)
