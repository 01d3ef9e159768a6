"""RetinaFace detection on photos that ship with scikit-image and matplotlib."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from facelib import recipes
from facelib.faces import detect
from facelib.faces.detect import Detections, Detector, RetinaFaceONNX, make_detector, nms

from faces_fixtures import grace_hopper


@pytest.fixture(scope="module")
def detector() -> RetinaFaceONNX:
    return make_detector(recipes.crop("demo"))


def _rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


@pytest.mark.parametrize(
    "name, expected",
    [("astronaut", 1), ("camera", 1), ("grace_hopper", 1), ("coffee", 0), ("rocket", 0),
     ("chelsea", 0)],
)
def test_counts_on_packaged_photos(detector, name, expected):
    img = grace_hopper() if name == "grace_hopper" else _rgb(getattr(data, name)())
    det = detector.detect(img)
    assert len(det) == expected
    assert det.boxes.shape == (expected, 4) and det.landmarks.shape == (expected, 5, 2)
    assert det.boxes.dtype == np.float32 and det.scores.dtype == np.float32
    assert np.all(det.scores >= recipes.crop().score_threshold)


def test_landmarks_in_standard_order_inside_box(detector):
    det = detector.detect(data.astronaut())
    (x1, y1, x2, y2), lm = det.boxes[0], det.landmarks[0]
    assert np.all((lm[:, 0] > x1) & (lm[:, 0] < x2) & (lm[:, 1] > y1) & (lm[:, 1] < y2))
    le, re, nose, ml, mr = lm
    assert le[0] < re[0] and ml[0] < mr[0]  # image-left first
    assert max(le[1], re[1]) < nose[1] < min(ml[1], mr[1])  # eyes above nose above mouth
    # the astronaut's face: about 95 x 120 px around (225, 117)
    assert 85 < x2 - x1 < 110 and 105 < y2 - y1 < 135
    assert abs((x1 + x2) / 2 - 225) < 10 and abs((y1 + y2) / 2 - 117) < 10


def test_downscaled_detection_maps_back_to_source(detector):
    img = data.astronaut()
    ref = detector.detect(img)
    big = cv2.resize(img, (1536, 1536), interpolation=cv2.INTER_CUBIC)
    small_side = RetinaFaceONNX(max_side=512)
    det = small_side.detect(big)
    assert len(det) == 1
    np.testing.assert_allclose(det.boxes[0], ref.boxes[0] * 3, atol=6)
    np.testing.assert_allclose(det.landmarks[0], ref.landmarks[0] * 3, atol=6)


def test_face_cut_by_border_is_found(detector):
    img = np.ascontiguousarray(data.astronaut()[:, 215:])  # left third of the face cut off
    det = detector.detect(img)
    assert len(det) == 1
    assert det.boxes[0, 0] < 10  # the box starts at the border


def _large_face_image() -> np.ndarray:
    """4000x3000 with one face about 900 px wide (Grace Hopper scaled up 5x)."""
    big = np.zeros((3000, 4000, 3), np.uint8)
    big[:, 700:3260] = cv2.resize(grace_hopper(), (2560, 3000), interpolation=cv2.INTER_LINEAR)
    return big


def test_large_image_one_large_face_no_duplicates(detector):
    det = detector.detect(_large_face_image())
    assert len(det) == 1
    x1, y1, x2, y2 = det.boxes[0]
    # Grace Hopper's face in the 512x600 original is about 176 x 221 px at (266, 217)
    assert 700 < x2 - x1 < 1100 and abs((x1 + x2) / 2 - (700 + 266 * 5)) < 60


@pytest.mark.slow
def test_full_resolution_large_face_gives_duplicates():
    """Why ``detect_max_side`` exists: at full resolution this model splits a huge face."""
    det = RetinaFaceONNX(max_side=0).detect(_large_face_image())
    assert len(det) > 1


def test_thresholds_are_parameters():
    img = data.astronaut()
    assert len(RetinaFaceONNX(score_threshold=1.0).detect(img)) == 0
    # without NMS (IoU threshold 1) the same face is reported by many anchors
    assert len(RetinaFaceONNX(nms_threshold=1.0).detect(img)) > 1
    with pytest.raises(ValueError, match="score_threshold"):
        RetinaFaceONNX(score_threshold=2)
    with pytest.raises(ValueError, match="uint8"):
        RetinaFaceONNX().detect(np.zeros((10, 10, 3), np.float32))


def test_protocol_and_backends():
    assert isinstance(make_detector(), Detector)
    assert RetinaFaceONNX().max_side == recipes.crop().detect_max_side
    assert "retinaface-mnet0.25" in detect.BACKENDS
    with pytest.raises(ValueError, match="unknown detector backend"):
        make_detector(backend="nope")
    assert len(Detections.empty()) == 0


def test_nms_hand_computed():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 5]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    # IoU(0,1) = 90/110 = 0.82; IoU(3,0) = 50/100 = 0.5; IoU(3,1) = 45/105 = 0.43
    assert nms(boxes, scores, 0.4).tolist() == [3, 2]
    assert nms(boxes, scores, 0.6).tolist() == [3, 0, 2]
    assert nms(boxes, scores, 0.9).tolist() == [3, 0, 1, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.4).tolist() == []


def _anchors_grid(h: int, w: int) -> np.ndarray:
    """Pytorch_Retinaface's PriorBox for cfg_mnet, written out: per level, rows, columns, sizes."""
    out = []
    for stride, sizes in zip((8, 16, 32), ((16, 32), (64, 128), (256, 512))):
        for i in range(-(-h // stride)):
            for j in range(-(-w // stride)):
                for s in sizes:
                    out.append(((j + 0.5) * stride, (i + 0.5) * stride, s, s))
    return np.asarray(out, np.float32)


@pytest.mark.parametrize("h, w", [(1, 1), (31, 33), (120, 97), (250, 250)])
def test_anchors_from_indices_match_the_prior_grid(h, w):
    d = RetinaFaceONNX()
    grid = _anchors_grid(h, w)
    assert d.num_anchors(h, w) == len(grid)
    np.testing.assert_array_equal(d._anchors(h, w), grid)
    idx = np.random.default_rng(h * w).choice(len(grid), 40)
    np.testing.assert_array_equal(d._anchors(h, w, idx), grid[idx])


def test_anchor_count_matches_the_network_outputs(detector):
    # odd sizes exercise the ceil() of every stride-2 stage
    for h, w in [(97, 131), (64, 64), (250, 251)]:
        x = detector._blob(np.zeros((h, w, 3), np.uint8))
        loc, conf, landms = detector._get_session().run(None, {"input": x})
        assert loc.shape[1] == conf.shape[1] == landms.shape[1] == detector.num_anchors(h, w)


def test_network_input_is_bgr_minus_the_model_mean(detector):
    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), np.uint8)
    x = detector._blob(img)
    assert x.shape == (1, 3, 37, 53) and x.dtype == np.float32
    ref = cv2.dnn.blobFromImage(img, 1.0, None, RetinaFaceONNX.MEAN_BGR, swapRB=True)
    np.testing.assert_array_equal(x, ref)
    np.testing.assert_array_equal(x[0, 0], img[..., 2].astype(np.float32) - 104.0)


def test_smallest_faces_found_in_a_large_photo_at_the_recipe_size():
    """What ``detect_max_side`` costs (its note): faces of ~140 px in a 4000x3000 photo are
    found (about 22 px in the detection copy); much smaller ones are not."""
    d = make_detector()
    g = grace_hopper()  # the face is about 176 px wide

    def canvas(face_px: int) -> np.ndarray:
        k = face_px / 176
        small = cv2.resize(g, (round(512 * k), round(600 * k)), interpolation=cv2.INTER_AREA)
        out = np.full((3000, 4000, 3), 128, np.uint8)
        for y, x in [(500, 500), (1500, 2000), (2200, 3000)]:
            out[y:y + small.shape[0], x:x + small.shape[1]] = small
        return out

    assert len(d.detect(canvas(140))) == 3
    assert len(d.detect(canvas(50))) == 0
