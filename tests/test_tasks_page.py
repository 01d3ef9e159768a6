"""The task-page skeleton (facelib.tasks.page) on a constructed grid: tables and computed verdicts."""

from __future__ import annotations

import pandas as pd
import pytest

from facelib.tasks.page import TaskPage


def _page(tmp_path, task="landmarks"):
    return TaskPage(task, results_dir=str(tmp_path), n_train=200, n_test=20, num_identities=20,
                    regimes=[1.0, 0.1, 0.02, 0.01], seeds=[0, 1, 2])


def _grid(values):
    return pd.DataFrame([{"run": f"x/{i}/{r}/{s}", "task": "landmarks", "init": i, "regime": r, "seed": s,
                          "n_train": 1, "seconds": 1.0, "nme_interocular": v[k], "nme_box": v[k] / 2}
                         for (r, i), v in values.items() for k, s in enumerate((0, 1, 2))])


def test_regimes_a_set_cannot_make_are_left_out_and_said(tmp_path):
    page = TaskPage("recognition", results_dir=str(tmp_path), n_train=200, n_test=20, num_identities=40,
                    regimes=[1.0, 0.1, 0.02], seeds=[0])
    assert page.regimes == [1.0, 0.1] and "2%" in page.skipped  # 4 images cannot hold 1/4 of 40 persons
    page.grid = _grid({("100%", "random"): [0.6, 0.61, 0.62]}).assign(task="recognition")
    assert "Not run: 2%" in page.verdict()


def test_summary_comparison_and_verdict_are_computed(tmp_path):
    page = _page(tmp_path)
    page.grid = _grid({
        ("100%", "random"): [0.20, 0.21, 0.22], ("100%", "ours"): [0.205, 0.215, 0.21],
        ("2%", "random"): [0.40, 0.41, 0.42], ("2%", "ours"): [0.30, 0.31, 0.32],
        ("2%", "supervised"): [0.25, 0.26, 0.27],
    })
    page.baselines = {"100%": {"nme_interocular": 0.25, "nme_box": 0.12},
                      "2%": {"nme_interocular": 0.25, "nme_box": 0.12}}
    summary = page.summary()
    assert list(summary["init"]) == ["random", "ours", "mean predictor", "random", "supervised", "ours",
                                     "mean predictor"]
    assert summary.iloc[0]["nme_interocular"] == "0.210 ± 0.006"
    comps = page.comparisons().set_index(["regime", "b"])
    assert comps.loc[("2%", "random"), "verdict"] == "better"
    assert comps.loc[("2%", "supervised"), "verdict"] == "worse"
    assert comps.loc[("100%", "random"), "verdict"] == "equal"
    text = page.verdict()
    assert "At the fewest labels run here (2%), our pretraining is **better** than random" in text
    assert "- 100%: clearly better than the trivial predictor: random, ours." in text
    assert "- 2%: no initialisation is clearly better than the trivial predictor." in text
    assert page.figure() is not None


def test_an_empty_grid_renders(tmp_path):
    page = _page(tmp_path)
    assert page.summary().empty and page.comparisons().empty
    assert "No comparison yet" in page.verdict()
    assert page.curves() is None and page.ced() is None
    page.figure()


def test_default_regimes_are_the_profiles(tmp_path):
    from facelib import recipes

    demo = TaskPage("landmarks", results_dir=str(tmp_path), n_train=1000, n_test=20, seeds=[0])
    paper = TaskPage("landmarks", profile="paper", results_dir=str(tmp_path), n_train=1000, n_test=20, seeds=[0])
    assert demo.regimes == [1.0, 0.1, 0.02] == list(recipes.finetune("demo").regimes)
    assert paper.regimes == list(recipes.sampling().regimes), "the paper profile runs every regime of 1.3"
