"""5-point similarity alignment to the ArcFace / CosFace templates (supplement 1.2)."""

from __future__ import annotations

import numpy as np
import pytest

from facelib.faces.align import (ARCFACE_112x112, COSFACE_112x96, align_face, estimate_similarity,
                                 template)


def _similarity(scale, angle_deg, tx, ty):
    a = np.deg2rad(angle_deg)
    R = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return np.hstack([R, [[tx], [ty]]])


def _apply(M, p):
    return p @ M[:, :2].T + M[:, 2]


@pytest.mark.parametrize("size", [(112, 112), (112, 96)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aligned_dots_land_within_1px_of_template(size, seed):
    """Draw 5 blobs at a similarity-transformed template, align, find the blobs again."""
    rng = np.random.default_rng(seed)
    tmpl = template(size)
    fwd = _similarity(rng.uniform(1.5, 3.0), rng.uniform(-40, 40), rng.uniform(60, 120),
                      rng.uniform(40, 100))
    src_pts = _apply(fwd, tmpl)
    # the blobs: Gaussian, in separate colour channels so that each is found unambiguously
    h, w = 500, 520
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    img = np.zeros((h, w, 3), np.float64)
    for k, (x, y) in enumerate(src_pts):
        # cv2 samples pixel (i, j) at integer coordinates: the blob centre is exactly (x, y)
        img[..., k % 3] += 250 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 4.0**2))
    # 5 blobs in 3 channels: each is measured in a window around its template point
    out, M = align_face(np.clip(img, 0, 255).astype(np.uint8), src_pts, size)
    assert out.shape == (size[0], size[1], 3)
    np.testing.assert_allclose(_apply(M, src_pts), tmpl, atol=1e-6)
    oy, ox = np.mgrid[0:size[0], 0:size[1]].astype(float)
    for k, t in enumerate(tmpl):
        ch = out[..., k % 3].astype(float)
        win = (np.abs(ox - t[0]) < 5) & (np.abs(oy - t[1]) < 5)  # template points are >= 14 px apart
        wts = ch * win
        c = np.array([(ox * wts).sum(), (oy * wts).sum()]) / wts.sum()
        assert np.linalg.norm(c - t) < 1.0, (k, c, t)


def test_estimate_similarity_recovers_known_transform():
    rng = np.random.default_rng(3)
    src = rng.uniform(0, 100, (5, 2))
    M = _similarity(0.7, 25, -3, 12)
    np.testing.assert_allclose(estimate_similarity(src, _apply(M, src)), M, atol=1e-9)
    # least squares with noise: the same answer as scikit-image's Umeyama, never a reflection
    from skimage.transform import SimilarityTransform

    noisy = _apply(M, src) + rng.normal(0, 0.5, (5, 2))
    est = estimate_similarity(src, noisy)
    ref = SimilarityTransform.from_estimate(src, noisy)
    np.testing.assert_allclose(est, ref.params[:2], atol=1e-9)
    assert np.linalg.det(est[:, :2]) > 0
    # and no worse than the true transform in squared error
    assert ((_apply(est, src) - noisy) ** 2).sum() <= ((_apply(M, src) - noisy) ** 2).sum()
    mirrored = src * [-1, 1]
    assert np.linalg.det(estimate_similarity(src, mirrored)[:, :2]) > 0
    with pytest.raises(ValueError, match="coincide"):
        estimate_similarity(np.ones((5, 2)), src)


def test_templates():
    np.testing.assert_allclose(template((112, 112)), ARCFACE_112x112)
    np.testing.assert_allclose(template((112, 96)), COSFACE_112x96)
    np.testing.assert_allclose(COSFACE_112x96[0], [30.2946, 51.6963])
    t = template((224, 224))
    np.testing.assert_allclose(t, ARCFACE_112x112 * 2)
    with pytest.raises(ValueError):
        template((0, 112))
