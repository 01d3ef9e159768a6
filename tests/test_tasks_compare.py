"""Seeds aggregated and initialisations compared (facelib.tasks.compare, .summary)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from facelib.tasks import compare as C
from facelib.tasks import summary


def _grid(task="landmarks", metric="nme_interocular", values=None):
    values = values or {"random": [0.30, 0.31, 0.32], "ours": [0.20, 0.21, 0.22], "supervised": [0.205, 0.25, 0.18]}
    return pd.DataFrame([{"task": task, "regime": r, "init": i, "seed": s, metric: v + (0.05 if r == "2%" else 0)}
                         for r in ("100%", "2%") for i, vs in values.items() for s, v in enumerate(vs)])


def test_aggregate_mean_and_standard_error():
    agg = C.aggregate(_grid(), ["nme_interocular"])
    assert list(agg.index.get_level_values(0).unique()) == ["100%", "2%"]
    row = agg.loc[("100%", "random")]
    assert row[("nme_interocular", "mean")] == pytest.approx(0.31)
    assert row[("nme_interocular", "se")] == pytest.approx(np.std([0.30, 0.31, 0.32], ddof=1) / math.sqrt(3))
    assert row[("seeds", "n")] == 3
    one = C.aggregate(_grid(values={"random": [0.3]}), ["nme_interocular"])
    assert math.isnan(one.loc[("100%", "random"), ("nme_interocular", "se")])  # no s.e. from one seed


def test_compare_signs_errors_and_verdicts():
    c = C.compare(_grid(), "landmarks", "ours", "random").set_index("regime")
    assert c.loc["100%", "difference"] == pytest.approx(0.10)  # lower NME is better: positive
    assert c.loc["100%", "verdict"] == "better"
    w = C.compare(_grid(), "landmarks", "random", "ours").set_index("regime")
    assert w.loc["2%", "verdict"] == "worse"
    e = C.compare(_grid(), "landmarks", "ours", "supervised").set_index("regime")
    assert e.loc["100%", "verdict"] == "equal"  # 0.21 vs 0.212 +- 0.02: within the noise
    se = math.sqrt((np.std([0.20, 0.21, 0.22], ddof=1) ** 2 + np.std([0.205, 0.25, 0.18], ddof=1) ** 2) / 3)
    assert e.loc["100%", "se"] == pytest.approx(se)
    acc = _grid("recognition", "verification_acc")
    assert C.compare(acc, "recognition", "ours", "random").set_index("regime").loc["100%", "verdict"] == "worse"
    single = C.compare(_grid(values={"random": [0.3], "ours": [0.2]}), "landmarks", "ours", "random")
    assert set(single["verdict"]) == {"n/a"}


def test_versus_baseline_and_summary():
    g = _grid()
    vb = C.versus_baseline(g, "landmarks", {"100%": {"nme_interocular": 0.25}, "2%": {"nme_interocular": 0.25}})
    clear = vb.set_index(["regime", "init"])["clearly_better"]
    assert clear[("100%", "ours")] and not clear[("100%", "random")] and not clear[("2%", "random")]
    grids = {"landmarks": g, "recognition": _grid("recognition", "verification_acc")}
    comps = C.compare_all(grids)
    assert set(comps["task"]) == {"landmarks", "recognition"} and set(comps["b"]) == {"random", "supervised"}
    text = summary.summary_text(comps)
    assert "better beyond two standard errors on **1 of 2** tasks" in text
    assert "**worse** on Face recognition (2%)" in text
    table = summary.verdict_table(comps)
    assert table.loc[("Facial landmark localisation", "2%"), "ours vs random"].startswith("better")
    assert summary.summary_figure(grids) is not None
    assert "No task" in summary.summary_text(C.compare_all({}))
