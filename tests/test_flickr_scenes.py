"""The demo's Flickr photos: synthetic faces composited into scenes, with their truth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facelib.faces import evaluate
from facelib.faces.detect import RetinaFaceONNX
from facelib.flickr import local_server, scenes

from flickr_fixtures import catalog


def test_compose_is_deterministic_and_boxes_lie_in_the_photo():
    a, b = scenes.compose(123), scenes.compose(123)
    assert np.array_equal(a.image, b.image) and a.faces == b.faces
    assert max(a.image.shape[:2]) == scenes.LONG_SIDE and a.image.dtype == np.uint8
    for seed in range(15):
        sc = scenes.compose(seed)
        h, w = sc.image.shape[:2]
        assert sc.layout in scenes.LAYOUTS
        for f in sc.faces:
            x1, y1, x2, y2 = f.box
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
            assert 0.0 <= f.visible <= 1.0 and -180 <= f.roll <= 180
    with pytest.raises(ValueError, match="seed"):
        scenes.compose(-1)


def test_sizes_span_a_few_pixels_to_most_of_the_frame():
    truth = {str(s): scenes.compose(s).truth for s in range(80)}
    table = scenes.truth_table(truth)
    assert set(table.layout) >= {"portrait", "few", "group", "crowd"}
    assert table["size"].min() < 6 and table["size"].max() > 0.5 * scenes.LONG_SIDE * 0.75
    per_photo = table.groupby("photo_id").size()
    assert per_photo.max() >= 15, "groups and crowds: many faces in one photo"
    assert (table.visible < 0.9).any() and (table.roll.abs() > 35).any(), "some occluded, some rotated"
    assert len(truth) - len(per_photo) > 0, "some photos hold no face"


def test_retinaface_finds_most_faces_larger_than_32_px_facing_the_camera():
    """The renderer's faces look like faces to the real detector (issue 15's bar: >= 80 %)."""
    det = RetinaFaceONNX()
    truths, rows = {}, []
    for photo in catalog(70, seed=5):
        data, truth = local_server.render_scene(photo.id)
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        d = det.detect(np.ascontiguousarray(image))
        truths[photo.id] = truth
        rows += [(photo.id, *box) for box in d.boxes.tolist()]
    import pandas as pd

    detections = pd.DataFrame(rows, columns=["photo_id", "x1", "y1", "x2", "y2"])
    t, d = evaluate.match(scenes.truth_table(truths), detections)
    easy = t[(t["size"] > 32) & (t["yaw"].abs() < 30)]
    assert len(easy) >= 80
    recall = easy["found"].mean()
    assert recall >= 0.8, f"RetinaFace found {recall:.0%} of {len(easy)} faces > 32 px with |yaw| < 30"
    tiny = t[t["size"] < 8]
    assert len(tiny) and tiny["found"].mean() < 0.2, "4-8 px faces are below what the detector sees"
    assert d["matched"].mean() > 0.85, "most detections are composited faces"


def test_server_keeps_the_truth_of_what_it_served():
    photos = catalog(6, seed=2)
    with local_server.LocalFlickr(photos, api_key="k") as server:
        served = server.photo_bytes(photos[0].id)
        table = server.truth()
        assert set(table.photo_id) <= {photos[0].id}
        data, truth = local_server.render_scene(photos[0].id)
        assert served == data and len(table) == len(truth.faces)
        both = server.truth([p.id for p in photos[:3]])
        assert set(both.photo_id) <= {p.id for p in photos[:3]}
        with pytest.raises(KeyError, match="not in the catalogue"):
            server.truth(["nope"])
