"""Augmentations: geometry applied consistently to images and landmarks; mirror permutations."""

from __future__ import annotations

import numpy as np
import pytest

from facelib.data import synth
from facelib.tasks import augment as A


@pytest.mark.parametrize("perm", [A.MIRROR_68, A.MIRROR_98, A.MIRROR_29])
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
    with pytest.raises(ValueError, match="no mirror permutation for 30 points"):
        A.mirror_permutation(30)


# A frontal COFW face (29 points, 0-based, the LFPW layout) written point by point from its
# anatomy, symmetric about x = 50, image-left side first: brows are outer corner, inner corner,
# top and bottom of the arc; eyes outer and inner corners, upper and lower lid, pupil.
COFW_FACE = {
    0: (22, 30), 1: (78, 30),        # brow outer corners
    2: (42, 31), 3: (58, 31),        # brow inner corners
    4: (32, 26), 6: (68, 26),        # brow arc, top
    5: (32, 33), 7: (68, 33),        # brow arc, bottom
    8: (24, 43), 9: (76, 43),        # eye outer corners (inter-ocular pair)
    10: (41, 43), 11: (59, 43),      # eye inner corners
    12: (32.5, 40), 14: (67.5, 40),  # upper lids
    13: (32.5, 46), 15: (67.5, 46),  # lower lids
    16: (32, 43), 17: (68, 43),      # pupils
    18: (43, 61), 19: (57, 61),      # nostril wings
    20: (50, 58), 21: (50, 64),      # nose tip, below the nose
    22: (37, 76), 23: (63, 76),      # mouth corners
    24: (50, 74.5), 25: (50, 77.5),  # inner lips: upper, lower
    26: (50, 71), 27: (50, 81),      # outer lips: upper, lower
    28: (50, 96),                    # chin
}


def _cofw_face() -> np.ndarray:
    assert sorted(COFW_FACE) == list(range(29))
    return np.array([COFW_FACE[i] for i in range(29)], float)


def test_cofw_mirror_maps_a_symmetric_face_onto_itself():
    pts = _cofw_face()
    mirrored = np.stack([100 - pts[:, 0], pts[:, 1]], 1)
    # each point's mirror image lands on the point the permutation names, and on no other
    np.testing.assert_allclose(mirrored[A.MIRROR_29], pts, atol=1e-12)
    nearest = np.argmin(np.linalg.norm(mirrored[None, :, :] - pts[:, None, :], axis=2), axis=1)
    np.testing.assert_array_equal(nearest, A.MIRROR_29)
    assert A.mirror_permutation(29) is A.MIRROR_29
    # through the augmentation itself: a flip of the 101-pixel-wide image mirrors x -> 100 - x
    m, flipped = A.random_matrix(np.random.default_rng(0), 101, A.Geometry(hflip_p=1.0))
    assert flipped
    np.testing.assert_allclose(A.transform_points(pts, m, flipped), pts, atol=1e-9)


def test_cofw_flip_swaps_the_eyes_and_keeps_image_left_on_the_left():
    pts = _cofw_face() + np.random.default_rng(1).normal(0, 1.5, (29, 2))  # not quite symmetric
    m, flipped = A.random_matrix(np.random.default_rng(0), 101, A.Geometry(hflip_p=1.0))
    out = A.transform_points(pts, m, flipped)
    for left, right in ((8, 9), (10, 11), (16, 17), (12, 14), (0, 1), (22, 23), (18, 19)):
        assert pts[left, 0] < pts[right, 0] and out[left, 0] < out[right, 0]
        # the image-left point after the flip is the mirror of the old image-right one
        np.testing.assert_allclose(out[left], [100 - pts[right, 0], pts[right, 1]], atol=1e-9)
        np.testing.assert_allclose(out[right], [100 - pts[left, 0], pts[left, 1]], atol=1e-9)
    for centre in (20, 21, 24, 25, 26, 27, 28):
        np.testing.assert_allclose(out[centre], [100 - pts[centre, 0], pts[centre, 1]], atol=1e-9)
