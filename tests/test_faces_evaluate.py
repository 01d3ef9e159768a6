"""Scoring detections against known boxes: IoU, greedy matching, recall and false positives by size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from facelib.faces import evaluate


def test_iou_matrix_hand_computed():
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]])
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 20, 30]])
    m = evaluate.iou_matrix(a, b)
    assert m.shape == (2, 3)
    assert m[0, 0] == pytest.approx(50 / 150) and m[0, 1] == 1.0 and m[0, 2] == 0.0
    assert m[1, 1] == pytest.approx(4 / 100)


def test_match_is_one_to_one_by_decreasing_iou():
    truth = pd.DataFrame({"photo_id": ["a", "a", "b", "c"], "x1": [0, 6, 0, 0], "y1": [0, 0, 0, 0],
                          "x2": [10, 16, 40, 4], "y2": [10, 10, 40, 4]})
    det = pd.DataFrame({"photo_id": ["a", "a", "b", "d"], "x1": [1, 0.5, 30, 0], "y1": [0, 0, 30, 0],
                        "x2": [11, 10, 70, 10], "y2": [10, 10, 70, 10]})
    t, d = evaluate.match(truth, det)
    # truth a0 takes det a1 (IoU .95, above det a0's .82); det a0 overlaps truth a1 by 1/3 only
    assert t["found"].tolist() == [True, False, False, False]
    assert d["matched"].tolist() == [False, True, False, False]
    assert t.loc[0, "iou"] == pytest.approx(0.95)
    assert t["size"].tolist() == pytest.approx([10, 10, 40, 4])
    assert not t.loc[3, "found"] and not d.loc[3, "matched"], "photos on one side only"
    loose = evaluate.match(truth, det, iou=0.3)[0]
    assert loose["found"].tolist() == [True, True, False, False]
    with pytest.raises(ValueError, match="iou"):
        evaluate.match(truth, det, iou=0)
    with pytest.raises(ValueError, match="x2"):
        evaluate.match(truth.drop(columns="x2"), det)


def test_by_size_counts_recall_and_false_positives():
    t = pd.DataFrame({"size": [3.0, 5.0, 20.0, 20.0, 100.0], "found": [False, False, True, False, True]})
    d = pd.DataFrame({"size": [19.0, 90.0, 7.0], "matched": [True, True, False]})
    table = evaluate.by_size(t, d, edges=[2, 8, 32, 128])
    assert table["true faces"].tolist() == [2, 2, 1]
    assert table["found"].tolist() == [0, 1, 1]
    assert table["recall"].tolist() == [0.0, 0.5, 1.0]
    assert table["detections"].tolist() == [1, 1, 1] and table["false positives"].tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match="increasing"):
        evaluate.by_size(t, d, edges=[8, 2])


def test_detection_figure_draws_both_panels():
    import matplotlib

    matplotlib.use("Agg")
    t = pd.DataFrame({"size": [3.0, 20.0, 40.0, 200.0], "found": [False, True, True, True]})
    d = pd.DataFrame({"size": [19.0, 41.0, 210.0, 12.0], "matched": [True, True, True, False]})
    fig = evaluate.detection_figure(t, d)
    assert len(fig.axes) == 2 and fig.axes[0].get_xscale() == "log"
