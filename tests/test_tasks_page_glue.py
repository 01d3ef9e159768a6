"""The glue the task pages (notebooks/04-08) share: initialisations and the grid by profile."""

from __future__ import annotations

import json

from facelib.tasks import grid as G


def test_page_inits(tmp_path):
    trunk, sup = tmp_path / "mine.pth", tmp_path / "sup.pth"
    trunk.write_bytes(b"x")
    sup.write_bytes(b"x")
    assert G.page_inits("demo", tmp_path, tmp_path, swav_trunk=str(trunk), supervised_trunk=str(sup)) == {
        "random": None, "supervised": str(sup), "ours": str(trunk)}
    inits = G.page_inits("paper", tmp_path / "results", tmp_path, imagenet_weights="in.pth", authors_weights="a.pth")
    # In the paper profile a missing trunk is not replaced by a demo one: page 03's path is named.
    assert inits == {"random": None, "ours": str(tmp_path / "results" / "swav_paper" / "trunk.pth"),
                     "imagenet": "in.pth", "authors": "a.pth"}


def test_page_grid_in_the_paper_profile_reads_finished_runs(tmp_path, capsys):
    run = tmp_path / "au" / "random" / "10pct"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"task": "au", "init": "random", "regime_name": "10%", "n_train": 5,
                                              "profile": "paper"}))
    (run / "metrics.json").write_text(json.dumps({"icc_mean": 0.2}))
    (tmp_path / "au" / "ours" / "10pct").mkdir(parents=True)  # unfinished: no metrics.json
    demo = tmp_path / "au" / "imagenet" / "10pct"  # a demo run in the same folder is not the paper's
    demo.mkdir(parents=True)
    (demo / "run.json").write_text(json.dumps({"task": "au", "init": "imagenet", "regime_name": "10%", "n_train": 5,
                                               "profile": "demo"}))
    (demo / "metrics.json").write_text(json.dumps({"icc_mean": 0.9}))
    grid = G.page_grid("au", {"random": None}, [0.1], tmp_path, profile="paper")
    assert list(grid["run"]) == ["au/random/10pct"] and grid.loc[0, "icc_mean"] == 0.2
    assert "1 finished runs" in capsys.readouterr().out
