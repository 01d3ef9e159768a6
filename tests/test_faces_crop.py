"""The 190/256 crop: geometry, transform, padding (supplement 1.1)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from facelib import recipes
from facelib.faces import crop_face, make_detector, transform_boxes, transform_points
from facelib.faces.crop import box_size, crop_square

R = recipes.crop()


def _crop(img, box, rule="max"):
    return crop_face(img, box, R.face_size, R.output_size, rule)


@pytest.mark.parametrize("box", [(100, 80, 200, 160), (37.3, 51.9, 312.8, 290.1), (5, 5, 25, 30)])
def test_known_box_is_190_px_in_the_crop(box):
    """Draw a filled box of known size, crop, measure it in the crop's pixels."""
    img = np.zeros((400, 400, 3), np.uint8)
    x1, y1, x2, y2 = box
    img[int(round(y1)):int(round(y2)), int(round(x1)):int(round(x2))] = 255
    out, M = _crop(img, box)
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8
    tb = transform_boxes(M, np.array(box))
    size = max(tb[2] - tb[0], tb[3] - tb[1])
    assert abs(size - 190) <= 2
    assert abs((tb[0] + tb[2]) / 2 - 128) <= 1 and abs((tb[1] + tb[3]) / 2 - 128) <= 1
    # measured, not computed: the white area's extent along the box's long side
    cols = np.flatnonzero(out[..., 0].max(axis=0) > 127)
    rows = np.flatnonzero(out[..., 0].max(axis=1) > 127)
    measured = max(cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1)
    assert abs(measured - 190) <= 2


def test_landmarks_land_where_the_transform_says():
    img = np.zeros((300, 400, 3), np.uint8)
    pts = np.array([[150.5, 120.5], [210.5, 118.5], [180.5, 150.5], [160.5, 175.5], [205.5, 172.5]])
    for x, y in pts:
        img[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2] = 255  # 3x3 dot centred at (x, y)
    box = np.array([130.0, 90.0, 232.0, 200.0])
    out, M = _crop(img, box)
    expected = transform_points(M, pts)
    grey = out[..., 0].astype(float)
    for e in expected:
        x0, y0 = int(e[0]) - 4, int(e[1]) - 4
        win = grey[y0:y0 + 9, x0:x0 + 9]
        yy, xx = np.mgrid[y0:y0 + 9, x0:x0 + 9] + 0.5  # pixel centres
        c = np.array([(xx * win).sum(), (yy * win).sum()]) / win.sum()
        assert np.linalg.norm(c - e) < 1.0


def test_zero_padding_outside_the_image():
    img = np.full((200, 200, 3), 200, np.uint8)
    out, M = _crop(img, (0, 0, 100, 100))  # centred on (50, 50): crop reaches beyond the corner
    corner = transform_points(M, np.array([0.0, 0.0]))
    assert corner[0] > 20 and corner[1] > 20
    assert np.all(out[: int(corner[1]) - 2, :] == 0) and np.all(out[:, : int(corner[0]) - 2] == 0)
    assert np.all(out[int(corner[1]) + 2:, int(corner[0]) + 2:] == 200)
    # a square completely outside gives zeros, not an error
    out, _ = crop_square(img, -1000, -1000, 50, 256)
    assert not out.any()


def test_real_face_redetected_at_about_190_px():
    img = data.astronaut()
    det = make_detector(R).detect(img)
    out, M = _crop(img, det.boxes[0])
    tb = transform_boxes(M, det.boxes[0])
    assert abs(box_size(tb) - 190) <= 2
    again = make_detector(R).detect(out)
    assert len(again) == 1
    # the detector re-finds the face at the same place and close to the same size
    assert abs(box_size(again.boxes[0]) - 190) < 190 * 0.12
    np.testing.assert_allclose(again.landmarks[0], transform_points(M, det.landmarks[0]), atol=6)


def test_box_size_rules():
    b = np.array([0, 0, 40, 90])
    assert box_size(b, "max") == 90 and box_size(b, "mean") == 65 and box_size(b, "sqrt_area") == 60
    out_max, M_max = _crop(np.zeros((200, 200, 3), np.uint8), b, "max")
    _, M_mean = _crop(np.zeros((200, 200, 3), np.uint8), b, "mean")
    assert M_mean[0, 0] > M_max[0, 0]  # a smaller box size zooms in more
    with pytest.raises(ValueError, match="box size rule"):
        box_size(b, "median")
    with pytest.raises(ValueError, match="degenerate"):
        _crop(np.zeros((10, 10, 3), np.uint8), (5, 5, 5, 5))


def test_shrinking_uses_area_interpolation():
    """A fine checkerboard shrunk by 4x averages to grey (bilinear would alias)."""
    img = np.indices((1024, 1024)).sum(axis=0) % 2 * 255
    img = np.repeat(img[..., None], 3, axis=2).astype(np.uint8)
    out, _ = crop_square(img, 512, 512, 1024, 256)
    assert np.abs(out.astype(float) - 127.5).max() < 2
