"""facelib.metrics against independent implementations (scipy, scikit-learn, definitions) and by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from sklearn.metrics import accuracy_score, mean_absolute_error, mean_squared_error, roc_curve

from facelib import metrics as M

TOL = 1e-9


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# ---------------------------------------------------------------------------------------------
# Independent reference implementations, written from the definitions
# ---------------------------------------------------------------------------------------------
def icc31_anova(x: np.ndarray, y: np.ndarray) -> float:
    """ICC(3,1) from the two-way ANOVA table of Shrout & Fleiss (1979), with explicit loops."""
    data = [[float(a), float(b)] for a, b in zip(x, y)]
    n, k = len(data), 2
    grand = sum(sum(r) for r in data) / (n * k)
    ss_rows = sum(k * (sum(r) / k - grand) ** 2 for r in data)
    ss_cols = 0.0
    for j in range(k):
        col_mean = sum(r[j] for r in data) / n
        ss_cols += n * (col_mean - grand) ** 2
    ss_total = sum((v - grand) ** 2 for r in data for v in r)
    ss_err = ss_total - ss_rows - ss_cols
    bms = ss_rows / (n - 1)
    ems = ss_err / ((n - 1) * (k - 1))
    return (bms - ems) / (bms + (k - 1) * ems)


def ccc_formula(x: np.ndarray, y: np.ndarray) -> float:
    """Lin's CCC = 2 rho sx sy / (sx^2 + sy^2 + (mx - my)^2) with population moments."""
    rho = scipy.stats.pearsonr(x, y)[0]
    sx, sy = np.std(x), np.std(y)
    return 2 * rho * sx * sy / (sx**2 + sy**2 + (np.mean(x) - np.mean(y)) ** 2)


def nme_loop(pred: np.ndarray, gt: np.ndarray, a: int, b: int) -> np.ndarray:
    out = []
    for p, g in zip(pred, gt):
        d = math.dist(g[a], g[b])
        out.append(sum(math.dist(pp, gg) for pp, gg in zip(p, g)) / len(g) / d)
    return np.array(out)


def lfw_bruteforce(scores: np.ndarray, same: np.ndarray, n_folds: int) -> float:
    fold = np.arange(scores.size) * n_folds // scores.size
    accs = []
    for k in range(n_folds):
        tr, te = fold != k, fold == k
        cands = np.r_[np.inf, np.unique(scores[tr])[::-1]]
        train_acc = [accuracy_score(same[tr], scores[tr] >= t) for t in cands]
        t = cands[int(np.argmax(train_acc))]
        accs.append(accuracy_score(same[te], scores[te] >= t))
    return float(np.mean(accs))


# ---------------------------------------------------------------------------------------------
# Random data against independent implementations
# ---------------------------------------------------------------------------------------------
def test_pcc_matches_scipy(rng):
    for _ in range(5):
        x = rng.normal(size=200)
        y = 0.6 * x + rng.normal(size=200)
        assert abs(M.pcc(x, y) - scipy.stats.pearsonr(x, y)[0]) < TOL


def test_ccc_matches_formula(rng):
    for _ in range(5):
        x = rng.normal(0.2, 1.3, size=300)
        y = 0.5 * x + rng.normal(-0.1, 0.7, size=300)
        assert abs(M.ccc(x, y) - ccc_formula(x, y)) < TOL


def test_icc_matches_two_way_anova(rng):
    gt = rng.uniform(0, 5, size=(150, 12))
    pred = 0.7 * gt + rng.normal(0.3, 0.8, size=gt.shape)
    ours = M.icc31(pred, gt)
    assert ours.shape == (12,)
    for j in range(12):
        assert abs(ours[j] - icc31_anova(pred[:, j], gt[:, j])) < TOL
    assert isinstance(M.icc31(pred[:, 0], gt[:, 0]), float)


def test_accuracy_matches_sklearn(rng):
    y = rng.integers(0, 8, size=500)
    logits = rng.normal(size=(500, 8))
    logits[np.arange(500), y] += 1.0
    assert abs(M.accuracy(logits, y) - accuracy_score(y, logits.argmax(1))) < TOL
    assert abs(M.accuracy(logits.argmax(1), y) - accuracy_score(y, logits.argmax(1))) < TOL


def test_mae_rmse_match_sklearn(rng):
    p, g = rng.normal(size=(100, 5)), rng.normal(size=(100, 5))
    np.testing.assert_allclose(M.mae(p, g), mean_absolute_error(g, p, multioutput="raw_values"),
                               rtol=0, atol=TOL)
    assert abs(M.rmse(p[:, 0], g[:, 0]) - math.sqrt(mean_squared_error(g[:, 0], p[:, 0]))) < TOL


def test_roc_and_tar_match_sklearn(rng):
    same = rng.integers(0, 2, size=2000)
    scores = np.round(rng.normal(size=2000) + 1.5 * same, 2)  # rounding makes ties
    fpr, tpr, thr = M.roc(scores, same)
    sf, st, sthr = roc_curve(same, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sf, rtol=0, atol=TOL)
    np.testing.assert_allclose(tpr, st, rtol=0, atol=TOL)
    np.testing.assert_allclose(thr[1:], sthr[1:], rtol=0, atol=TOL)
    for far in (1e-3, 1e-2, 0.1):
        assert abs(M.tar_at_far(scores, same, far) - st[sf <= far].max()) < TOL
    both = M.tar_at_far(scores, same, (1e-3, 1e-1))
    assert both.shape == (2,) and both[0] <= both[1]


def test_verification_accuracy_matches_bruteforce(rng):
    same = np.tile(np.r_[np.ones(30), np.zeros(30)], 10)
    scores = np.round(rng.normal(size=600) + 2.0 * same, 1)
    ours = M.verification_accuracy(scores, same, n_folds=10)
    assert abs(ours["accuracy"] - lfw_bruteforce(scores, same.astype(bool), 10)) < TOL
    assert ours["fold_accuracy"].shape == (10,) and ours["thresholds"].shape == (10,)


def test_nme_matches_loop(rng):
    gt = rng.uniform(0, 64, size=(20, 68, 2))
    pred = gt + rng.normal(0, 1.5, size=gt.shape)
    np.testing.assert_allclose(M.nme(pred, gt), nme_loop(pred, gt, 36, 45), rtol=0, atol=TOL)
    gt98 = rng.uniform(0, 64, size=(4, 98, 2))
    np.testing.assert_allclose(M.nme(gt98 + 1, gt98), nme_loop(gt98 + 1, gt98, 60, 72), rtol=0, atol=TOL)
    gt29 = rng.uniform(0, 64, size=(4, 29, 2))
    np.testing.assert_allclose(M.nme(gt29 + 1, gt29), nme_loop(gt29 + 1, gt29, 8, 9), rtol=0, atol=TOL)


def test_auc_is_the_limit_of_trapezoids(rng):
    e = rng.uniform(0, 0.12, size=400)
    t = np.linspace(0, 0.08, 80001)
    trap = np.trapezoid(M.ced(e, t), t) / 0.08
    assert abs(M.auc(e, 0.08) - trap) < 1e-6


# ---------------------------------------------------------------------------------------------
# Small hand-computed cases
# ---------------------------------------------------------------------------------------------
def test_nme_hand_case():
    gt = np.zeros((1, 68, 2))
    gt[0, 36] = (0, 0)
    gt[0, 45] = (10, 0)
    pred = gt.copy()
    pred[0, 0] += (3, 4)  # one point off by 5 px; inter-ocular distance 10
    assert M.nme(pred, gt)[0] == pytest.approx(5 / 68 / 10, abs=1e-15)
    boxes = np.array([[0, 0, 4, 25]])  # sqrt(4 * 25) = 10
    assert M.nme(pred, gt, norm="box", boxes=boxes)[0] == pytest.approx(5 / 68 / 10, abs=1e-15)


def test_box_size_from_landmarks():
    gt = np.array([[[0, 0, 5], [8, 2, 1], [4, 18, 0]]], dtype=float)
    assert M.box_size(gt)[0] == pytest.approx(12.0)  # w 8, h 18


def test_ced_auc_failure_hand_case():
    e = np.array([0.01, 0.02, 0.05, 0.2])
    np.testing.assert_array_equal(M.ced(e, [0.0, 0.02, 0.1, 1.0]), [0, 0.5, 0.75, 1.0])
    # AUC@0.1 = mean(max(0, 0.1 - e)) / 0.1 = (0.09 + 0.08 + 0.05 + 0) / 4 / 0.1
    assert M.auc(e, 0.1) == pytest.approx(0.55, abs=1e-12)
    assert M.failure_rate(e, 0.1) == 0.25
    assert M.failure_rate(e, 0.05) == 0.25  # e == T is not a failure


def test_icc_hand_case_and_degenerate():
    assert M.icc31([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    # constant offset: ICC(3,1) is consistency, so a bias does not lower it
    assert M.icc31([2, 3, 4], [1, 2, 3]) == pytest.approx(1.0)
    # x = (1, 2, 3), y = (3, 2, 1): BMS = 0, EMS = 4 / 2 -> (0 - 2) / (0 + 2) = -1
    assert M.icc31([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # constant prediction: BMS = 2 * var_rows..., hand value: rows means (1.5, 2, 2.5), grand 2
    # SS_rows = 2 * 0.5 = 1 -> BMS 0.5; SS_total = 2, SS_cols = 0 -> SS_err = 1, EMS 0.5 -> 0
    assert M.icc31([2, 2, 2], [1, 2, 3]) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(M.icc31([2, 2], [2, 2]))
    with pytest.raises(M.MetricError, match="at least 2"):
        M.icc31([1.0], [1.0])


def test_ccc_pcc_hand_cases():
    assert M.ccc([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    # y = x + 1: cov 2/3, var 2/3 each, mean diff 1 -> 2 (2/3) / (4/3 + 1) = 4/7
    assert M.ccc([2, 3, 4], [1, 2, 3]) == pytest.approx(4 / 7)
    assert M.pcc([2, 3, 4], [1, 2, 3]) == pytest.approx(1.0)
    assert M.pcc([3, 2, 1], [1, 2, 3]) == pytest.approx(-1.0)
    # constant prediction: PCC undefined (NaN), CCC 0
    assert math.isnan(M.pcc([0.5, 0.5, 0.5], [1, 2, 3]))
    assert M.ccc([0.5, 0.5, 0.5], [1, 2, 3]) == 0.0
    with pytest.raises(M.MetricError, match="at least 2"):
        M.pcc([1.0], [2.0])
    with pytest.raises(M.MetricError, match="at least 2"):
        M.ccc([1.0], [2.0])


def test_single_sample_where_defined():
    assert M.rmse([1.0], [4.0]) == 3.0
    assert M.mae([1.0], [4.0]) == 3.0
    assert M.sagr([-0.2], [-0.9]) == 1.0
    assert M.accuracy([2], [2]) == 1.0


def test_sagr_hand_case():
    assert M.sagr([0.5, -0.1, 0.0, 0.3], [0.2, 0.4, 0.0, -0.3]) == 0.5


def test_verification_hand_case():
    # perfectly separable: every fold picks a threshold that separates the held-out pairs
    scores = np.array([0.9, 0.8, 0.1, 0.2] * 5)
    same = np.array([1, 1, 0, 0] * 5)
    r = M.verification_accuracy(scores, same, n_folds=5)
    assert r["accuracy"] == 1.0 and r["std"] == 0.0
    assert (r["thresholds"] == 0.8).all()
    fpr, tpr, thr = M.roc([0.9, 0.1], [1, 0])
    np.testing.assert_array_equal(fpr, [0, 0, 1])
    np.testing.assert_array_equal(tpr, [0, 1, 1])
    assert M.tar_at_far([0.9, 0.1], [1, 0], 0.0) == 1.0


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [M.pcc, M.ccc, M.rmse, M.mae, M.sagr, M.icc31])
def test_nan_input_is_a_clear_error(fn):
    with pytest.raises(M.MetricError, match=r"pred: 1 NaN"):
        fn([1.0, float("nan"), 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(M.MetricError, match=r"gt: 1 NaN or infinite"):
        fn([1.0, 2.0, 3.0], [1.0, 2.0, float("inf")])


def test_shape_mismatch_and_empty():
    with pytest.raises(M.MetricError, match="shape"):
        M.rmse([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(M.MetricError, match="at least 1"):
        M.rmse([], [])
    with pytest.raises(M.MetricError, match="dimensions"):
        M.nme(np.zeros((2, 68)), np.zeros((2, 68)))


def test_landmark_errors():
    gt = np.zeros((1, 68, 2))
    with pytest.raises(M.MetricError, match="zero interocular"):
        M.nme(gt, gt)
    with pytest.raises(M.MetricError, match="no known eye corners"):
        M.nme(np.ones((1, 5, 2)), np.ones((1, 5, 2)))
    with pytest.raises(M.MetricError, match="norm"):
        M.nme(gt, gt, norm="diag")


def test_verification_errors():
    with pytest.raises(M.MetricError, match="0 .different. or 1"):
        M.roc([0.1, 0.2], [0, 2])
    with pytest.raises(M.MetricError, match="both genuine"):
        M.roc([0.1, 0.2], [1, 1])
    with pytest.raises(M.MetricError, match="scores: 1 NaN"):
        M.verification_accuracy([0.1, float("nan")], [0, 1], n_folds=2)
