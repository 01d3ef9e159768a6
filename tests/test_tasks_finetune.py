"""The shared fine-tuning loop: run directory, exact resume, initialisations, subsets, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision

from facelib import checkpoint, cli, recipes
from facelib.swav import model as swav_model
from facelib.tasks import backbone as B
from facelib.tasks import baseline as BL
from facelib.tasks import finetune as FT
from facelib.tasks import grid as G

torch.set_num_threads(1)

TINY = FT.DataSpec(n_train=12, n_test=10, size=64, num_identities=4)


def _state(run_dir):
    return checkpoint.load(run_dir / FT.CHECKPOINT)["model"]


def test_killed_run_resumes_to_the_same_metrics(tmp_path):
    kw = dict(data=TINY, overrides={"epochs": 2, "batch_size": 8}, progress=False)
    full = FT.finetune("landmarks", tmp_path / "full", **kw)
    assert FT.finetune("landmarks", tmp_path / "cut", until_epoch=1, **kw) is None
    assert not (tmp_path / "cut" / "metrics.json").exists()
    # a crash after the checkpoint leaves log records of an unfinished epoch: they are dropped
    with (tmp_path / "cut" / FT.LOG).open("a") as f:
        f.write(json.dumps({"kind": "iter", "epoch": 1, "iter": 99, "loss": 1.0}) + "\n")
    resumed = FT.finetune("landmarks", tmp_path / "cut", resume=True, **kw)
    assert resumed == full
    a, b = _state(tmp_path / "full"), _state(tmp_path / "cut")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    strip = lambda recs: [{k: v for k, v in r.items() if "per_s" not in k and k != "seconds"} for r in recs]
    assert strip(FT.read_log(tmp_path / "full")) == strip(FT.read_log(tmp_path / "cut"))
    run = json.loads((tmp_path / "cut" / "run.json").read_text())
    assert run["status"] == "finished" and run["task"] == "landmarks" and run["n_train"] == 12
    recipe = json.loads((tmp_path / "cut" / "recipe.json").read_text())
    assert recipe["task"]["lr"] == recipes.task("landmarks", "demo").lr and recipe["task"]["epochs"] == 2
    assert set(np.load(tmp_path / "cut" / "eval.npz").files) >= {"ced_interocular", "nme_interocular"}
    # a finished run returns its metrics; without resume it is refused
    assert FT.finetune("landmarks", tmp_path / "cut", resume=True, **kw) == full
    with pytest.raises(FT.FinetuneError, match="already holds a run"):
        FT.finetune("landmarks", tmp_path / "cut", **kw)


def test_resume_with_a_changed_recipe_is_refused(tmp_path):
    two = {"epochs": 2, "epochs_range": (2, 2)}  # pinned: the run must have a 2nd epoch, whatever the demo range
    assert FT.finetune("au", tmp_path, data=TINY, overrides=two, until_epoch=1, progress=False) is None
    with pytest.raises(FT.FinetuneError, match="recipe differs"):
        FT.finetune("au", tmp_path, data=TINY, overrides={**two, "lr": 1e-3}, resume=True,
                    progress=False)


def test_initialisations_load_the_trunk(tmp_path):
    net = torchvision.models.resnet18()
    sd = {k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    torch.save(sd, tmp_path / "imagenet.pth")
    torch.save({"state_dict": {f"module.base_net.{k}": v for k, v in sd.items()}, "epoch": 3},
               tmp_path / "authors.pth")
    swav = swav_model.SwAVModel("resnet18", hidden_mlp=32, feat_dim=8, num_prototypes=4)
    swav_model.export_trunk(swav, tmp_path / "trunk.pth")
    for init, path, ref, layout in (("imagenet", "imagenet.pth", sd, "torchvision"),
                                    ("authors", "authors.pth", sd, "authors (module.base_net.*)"),
                                    ("ours", "trunk.pth", swav_model.trunk_state_dict(swav), "torchvision")):
        trunk, info = B.build_trunk("resnet18", init, tmp_path / path)
        assert info["layout"] == layout
        torch.testing.assert_close(trunk.state_dict()["layer4.1.bn2.weight"], ref["layer4.1.bn2.weight"])
        torch.testing.assert_close(trunk.state_dict()["conv1.weight"], ref["conv1.weight"])


def test_initialisation_errors(tmp_path):
    with pytest.raises(B.InitError, match="needs a local weights file"):
        B.build_trunk("resnet18", "imagenet")
    with pytest.raises(B.InitError, match="does not exist"):
        B.build_trunk("resnet18", "authors", tmp_path / "nope.pth")
    with pytest.raises(B.InitError, match="unknown initialisation"):
        B.build_trunk("resnet18", "vggface")
    torch.save({k: v for k, v in torchvision.models.resnet50().state_dict().items()}, tmp_path / "r50.pth")
    with pytest.raises(B.InitError, match="r50.pth"):
        B.build_trunk("resnet18", "imagenet", tmp_path / "r50.pth")


def test_regime_subsets_are_fixed_and_nested():
    data = FT.DataSpec(n_train=400, num_identities=20)
    big = FT.training_subset("au", data, 0.1)
    small = FT.training_subset("au", data, 0.02)
    assert len(big) == 40 and len(small) == 8 and set(small) <= set(big)
    np.testing.assert_array_equal(small, FT.training_subset("au", data, 0.02))
    rec = FT.training_subset("recognition", data, 0.02)
    assert len(set(rec % 20)) >= 5  # at least 1/4 of the 20 identities (supplement 1.3)


def test_run_name_matches_launch_grid():
    from facelib.launch import GridPoint
    assert G.run_name("au", "ours", 0.02) == GridPoint("au", 0.02, "ours").run


def test_cli_finetune(tmp_path, capsys):
    args = ["finetune", "emotion", "--results", str(tmp_path), "--regime", "0.5", "--n-train", "8",
            "--n-test", "6", "--size", "64", "--identities", "2", "--set", "epochs=1", "--set", "lr=0.0001"]
    assert cli.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"acc", "valence_ccc", "arousal_rmse"} <= set(out)
    run = json.loads((tmp_path / "emotion/random/50pct/run.json").read_text())
    assert run["n_train"] == 4 and run["regime_name"] == "50%"


def test_grid_runs_resumes_and_collects(tmp_path):
    kw = dict(profile="demo", data=TINY, overrides={"epochs": 1}, progress=False, seeds=[0])
    grid = G.run_grid("recon3d", {"random": None}, [1.0, 0.5], tmp_path, **kw)
    assert list(grid["run"]) == ["recon3d/random/100pct", "recon3d/random/50pct"]
    assert list(grid["n_train"]) == [12, 6] and grid["nme_box"].notna().all()
    again = G.run_grid("recon3d", {"random": None}, [1.0, 0.5], tmp_path, **kw)  # read back
    assert again.drop(columns="seconds").equals(grid.drop(columns="seconds"))
    collected = G.collect_runs(tmp_path, "recon3d")
    assert sorted(collected["run"]) == sorted(grid["run"])
    assert len(G.collect_runs(tmp_path, "recon3d", profile="demo")) == 2
    assert len(G.collect_runs(tmp_path, "recon3d", profile="paper")) == 0  # demo runs are not the paper's
    other = FT.DataSpec(n_train=10, n_test=10, size=64, num_identities=4)
    with pytest.raises(FT.FinetuneError, match="other settings"):
        G.run_grid("recon3d", {"random": None}, [1.0], tmp_path, profile="demo", data=other,
                   overrides={"epochs": 1}, progress=False, seeds=[0])
    rerun = G.run_grid("recon3d", {"random": None}, [1.0], tmp_path, profile="demo", data=other,
                       overrides={"epochs": 1}, progress=False, stale="rerun", seeds=[0])
    assert list(rerun["n_train"]) == [10]
    assert json.loads((tmp_path / "recon3d/random/100pct.stale/run.json").read_text())["n_train"] == 12
    assert sorted(G.collect_runs(tmp_path, "recon3d")["run"]) == ["recon3d/random/100pct", "recon3d/random/50pct"]


def test_grid_seeds_name_their_runs_and_processes_do_not_change_results(tmp_path):
    kw = dict(profile="demo", data=TINY, overrides={"epochs": 1}, progress=False, seeds=[0, 1])
    grid = G.run_grid("recon3d", {"random": None}, [1.0], tmp_path / "a", **kw)
    assert list(grid["run"]) == ["recon3d/random/100pct", "recon3d/random/100pct-seed1"]
    assert list(grid["seed"]) == [0, 1]
    assert grid["nme_box"].iloc[0] != grid["nme_box"].iloc[1]  # another seed: another run
    runs = [json.loads((tmp_path / "a" / r / "run.json").read_text()) for r in grid["run"]]
    assert [r["seed"] for r in runs] == [0, 1]
    # two runs at once, each in its own process on one thread: the same numbers as one by one
    # on one thread (the run's seeds fix it)
    torch.set_num_threads(1)
    one = G.run_grid("recon3d", {"random": None}, [1.0], tmp_path / "b", **kw)
    two = G.run_grid("recon3d", {"random": None}, [1.0], tmp_path / "c", processes=2, **kw)
    pd.testing.assert_frame_equal(one.drop(columns="seconds"), two.drop(columns="seconds"))
    collected = G.collect_runs(tmp_path / "c", "recon3d")
    assert sorted(collected["seed"]) == [0, 1]


def test_regime_epochs_follow_the_range():
    lmk = recipes.task("landmarks", "paper")  # 60-480 epochs "depending on the data regime"
    assert recipes.regime_epochs(lmk, 1.0) == 60 and recipes.regime_epochs(lmk, 0.01) == 480
    assert recipes.regime_epochs(lmk, 0.1) == round(60 * 8 ** 0.5)  # the geometric mean
    assert recipes.regime_epochs(lmk, 0.001) == 480  # no further than the range's end
    assert recipes.regime_epochs(recipes.override(lmk, epochs=2), 0.01) == 2  # epochs caps every regime
    with pytest.raises(recipes.RecipeError, match="regime"):
        recipes.regime_epochs(lmk, 0.0)


def test_cli_submits_through_launch(tmp_path, capsys):
    base = ["finetune", "recon3d", "--results", str(tmp_path), "--n-train", "6", "--n-test", "6",
            "--size", "64", "--identities", "2", "--set", "epochs=1"]
    # a fine-tuning run takes one GPU (Launch.finetune_gpus_per_run): no num_gpus override needed
    assert cli.main(base + ["--cluster", "debug"]) == 0
    assert (tmp_path / "recon3d/random/100pct/metrics.json").exists()
    assert "submitted recon3d as job" in capsys.readouterr().out


@pytest.mark.parametrize("task,train,test", [("landmarks", "w300", "w300"), ("recon3d", "w300lp", "aflw2000"),
                                             ("emotion", "affectnet", "affectnet")])
def test_real_dataset_formats_fine_tune(tmp_path, task, train, test):
    from facelib.data import native
    native.write(train, tmp_path / "train", 8, seed=0, size=64)
    native.write(test, tmp_path / "test", 6, seed=5, size=64)
    data = FT.DataSpec(kind="reader", reader=train, root=str(tmp_path / "train"), test_reader=test,
                       test_root=str(tmp_path / "test"))
    m = FT.finetune(task, tmp_path / "run", data=data, overrides={"epochs": 1, "lr": 1e-4}, progress=False)
    assert m and all(v is None or np.isfinite(v) for v in m.values())
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["n_train"] == 8 and run["n_test"] == 6


def test_reader_records_lacking_labels_are_refused(tmp_path):
    from facelib.data import native
    from facelib.tasks.records import MissingLabelError
    native.write("w300", tmp_path / "w", 4, size=64)
    data = FT.DataSpec(kind="reader", reader="w300", root=str(tmp_path / "w"), test_reader="w300",
                       test_root=str(tmp_path / "w"))
    with pytest.raises(MissingLabelError, match="lacks valence"):
        data.build("emotion")


def test_the_loop_learns_a_tiny_training_set(tmp_path):
    # eight faces seen 24 times (48 steps): the training loss of the 3D landmark regression must
    # fall well below the first epoch's, the mean predictor's (the head starts as it: head_init)
    data = FT.DataSpec(n_train=8, n_test=8, size=64, num_identities=2)
    FT.finetune("recon3d", tmp_path, data=data, overrides={"epochs": 24, "epochs_range": (24, 24), "batch_size": 4,
                                                            "rotation_deg": 0.0, "scale_range": (1.0, 1.0),
                                                            "translation": 0.0}, progress=False)
    losses = [r["loss"] for r in FT.read_log(tmp_path, "epoch")]
    assert losses[-1] < 0.4 * losses[0], losses
    # with a random head the first epoch is worse than the mean predictor, and it falls further
    FT.finetune("recon3d", tmp_path / "default", data=data, progress=False,
                overrides={"epochs": 24, "epochs_range": (24, 24), "batch_size": 4, "rotation_deg": 0.0,
                           "scale_range": (1.0, 1.0),
                           "translation": 0.0, "head_init": "default"})
    default = [r["loss"] for r in FT.read_log(tmp_path / "default", "epoch")]
    assert default[0] > losses[0] and default[-1] < 0.2 * default[0], default


def test_precise_bn_sets_plain_batch_statistics():
    task = FT.make_task("landmarks", "demo")
    train, _ = TINY.build()
    trunk, _ = B.build_trunk("resnet18", "random")
    c, side = B.feature_shape(trunk, task.input_size)
    model = B.FaceModel(trunk, task.build_head(c, side))
    idx = np.arange(8)
    assert FT.precise_bn(model, task, train, idx, 8, 5, 0, torch.device("cpu")) == 1
    x = torch.stack([torch.from_numpy(task.prepare(*train[int(i)], None)[0]) for i in idx])
    with torch.no_grad():
        conv = model.trunk[0](x)
    bn = model.trunk[1]
    torch.testing.assert_close(bn.running_mean, conv.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.1  # restored


def test_mean_baseline():
    m = BL.mean_baseline("emotion", data=TINY)
    assert m["valence_ccc"] == 0.0 and m["valence_pcc"] != m["valence_pcc"]  # constant: CCC 0, PCC NaN
    # recognition: chance on the (balanced) test pairs
    assert BL.mean_baseline("recognition", data=TINY)["verification_acc"] == 0.5


@pytest.mark.slow
def test_sigkilled_run_resumes_to_the_same_metrics(tmp_path, repo_root):
    import os
    import signal
    import subprocess
    import sys
    import time

    args = ["--n-train", "24", "--n-test", "8", "--size", "64", "--identities", "4", "--set", "epochs=4",
            "--set", "epochs_range=[4, 4]", "--set", "batch_size=4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "facelib.cli", "finetune", "au", "--run-dir"]
    proc = subprocess.Popen(cmd + [str(tmp_path / "killed")] + args, env=env, cwd=repo_root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "killed" / FT.CHECKPOINT
    deadline = time.time() + 300
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # in the middle of epoch 2
    proc.wait()
    assert ckpt.exists() and not (tmp_path / "killed" / "metrics.json").exists()
    subprocess.run(cmd + [str(tmp_path / "killed"), "--resume"] + args, env=env, cwd=repo_root, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(cmd + [str(tmp_path / "whole")] + args, env=env, cwd=repo_root, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert killed == json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert len(FT.read_log(tmp_path / "killed", "epoch")) == 4


def test_versus_baseline_and_verdict():
    import pandas as pd
    grid = pd.DataFrame([{"init": "random", "regime": "100%", "nme_interocular": 0.2, "nme_box": 0.1},
                         {"init": "ours", "regime": "100%", "nme_interocular": 0.3, "nme_box": 0.1},
                         {"init": "random", "regime": "10%", "nme_interocular": 0.2, "nme_box": 0.1}])
    base = {"100%": {"nme_interocular": 0.25, "nme_box": 0.15}, "10%": {"nme_interocular": 0.1, "nme_box": 0.05}}
    table = BL.versus_baseline("landmarks", grid, base)
    assert list(table["better"]) == [True, True, False, True, False, False]
    np.testing.assert_allclose(table["gain"], [0.05, 0.05, -0.05, 0.05, -0.1, -0.05])
    assert table["clear"].tolist() == table["better"].tolist()  # 20-33 % lower errors: clear
    text = BL.verdict("landmarks", table)
    assert "Not better than the trivial baseline: ours (nme_interocular 0.300 vs 0.250)" in text
    assert "**10%**: Not better" in text
    # higher is better for accuracies; one flat baseline for every regime; margins
    rec = BL.versus_baseline("recognition", pd.DataFrame([{"init": "random", "regime": "100%", "verification_acc": 0.7},
                                                          {"init": "ours", "regime": "100%", "verification_acc": 0.52}]),
                             {"verification_acc": 0.5})
    assert rec["better"].all() and rec["clear"].tolist() == [True, False]
    text = BL.verdict("recognition", rec)
    assert "less than a clear margin: ours (verification_acc 0.520 vs 0.500)" in text
    assert "Clearly better: random" in text
    only = BL.verdict("recognition", rec.iloc[:1])
    assert "every run beats the trivial baseline by a clear margin" in only
    # errors: 5 % of the baseline
    small = BL.versus_baseline("landmarks", grid.iloc[:1].assign(nme_interocular=0.24), base)
    assert small["better"].iloc[0] and not small["clear"].iloc[0]


def test_checkpoint_interval_keeps_resume_exact(tmp_path):
    # checkpoint_every_s: no checkpoint between epochs inside the interval, one at the end of
    # the call; stopping and resuming still ends with the same metrics
    kw = dict(data=TINY, overrides={"epochs": 3, "epochs_range": (3, 3), "batch_size": 8}, progress=False)
    full = FT.finetune("au", tmp_path / "full", **kw)
    assert FT.finetune("au", tmp_path / "cut", until_epoch=2, checkpoint_every_s=3600.0, **kw) is None
    assert checkpoint.load(tmp_path / "cut" / FT.CHECKPOINT)["epoch"] == 2
    assert FT.finetune("au", tmp_path / "cut", resume=True, checkpoint_every_s=3600.0, **kw) == full


def test_a_changed_initialisation_file_makes_the_run_stale(tmp_path):
    # "ours" rewritten under the same name (a new pretraining): the old run is not resumed
    path = tmp_path / "trunk.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    kw = dict(init="ours", init_path=str(path), data=TINY, overrides={"epochs": 1}, progress=False)
    FT.finetune("au", tmp_path / "run", **kw)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["init_digest"]
    assert FT.finetune("au", tmp_path / "run", resume=True, **kw)  # same file: read back
    torch.manual_seed(1)
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(FT.StaleRunError, match="init_digest"):
        FT.finetune("au", tmp_path / "run", resume=True, **kw)
