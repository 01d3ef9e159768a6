"""The fine-tuning grid as job arrays (issue 8, item 6), without a cluster: the CLI's dry runs,
skipping of settled runs, the pages' `cluster` parameter on the in-process `debug` profile, and
what a FinetuneJob runs. The same against the local SLURM controller is in
tests/test_launch_slurm.py (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from facelib import cli, launch, recipes
from facelib.tasks import finetune as FT
from facelib.tasks import grid as G

torch.set_num_threads(1)

TINY = FT.DataSpec(n_train=10, n_test=8, size=64, num_identities=4)
FAST = {"epochs": 1, "batch_size": 8}


def test_cli_grid_dry_run_prints_the_array_script(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no sbatch on a laptop: a dry run still works
    root = tmp_path / "results"
    assert cli.main(["finetune", "recognition", "--profile", "paper", "--grid", "--init", "random",
                     "--init", f"ours={tmp_path / 'trunk.pth'}", "--cluster", "v100x8", "--dry-run",
                     "--results", str(root)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    n = 2 * len(recipes.sampling().regimes)
    assert f"recognition: {n} run(s) to submit as one job array, 0 settled" in out
    assert f"#SBATCH --array=0-{n - 1}%{n}" in lines
    assert "#SBATCH --gpus-per-node=1" in lines and "#SBATCH --ntasks-per-node=1" in lines
    assert "512 images per GPU (global batch 512)" in out
    assert "the supplement used 8 GPUs (64 images each)" in out
    assert "  submit recognition/ours/1pct" in lines and "  submit recognition/random/100pct" in lines
    assert f"warning: init 'ours': weights file {tmp_path / 'trunk.pth'} does not exist" in out
    assert not root.exists()  # nothing submitted, nothing written
    # Submitting (not a dry run) a grid whose weights file is missing is refused before anything runs.
    with pytest.raises(FT.FinetuneError, match="init 'ours': weights file .*trunk.pth does not exist"):
        G.submit_grid("au", {"random": None, "ours": tmp_path / "trunk.pth"}, [1.0], root,
                      profile="demo", on="debug")
    assert not root.exists()


def test_cli_grid_dry_run_skips_finished_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "results"
    done = root / "landmarks/random/100pct"
    done.mkdir(parents=True)
    (done / "metrics.json").write_text("{}")
    assert cli.main(["finetune", "landmarks", "--profile", "paper", "--regime", "1.0", "0.1",
                     "--cluster", "slurm-local", "--dry-run", "--results", str(root)]) == 0
    out = capsys.readouterr().out
    assert "landmarks: 1 run(s) to submit as one job, 1 settled" in out
    assert "  submit landmarks/random/10pct" in out.splitlines()
    assert "  skip   landmarks/random/100pct (COMPLETED)" in out.splitlines()
    assert "#SBATCH --array" not in out  # one run left: a plain job, as submitit submits it
    assert "#SBATCH --partition=debug" in out.splitlines()
    assert sorted(p.name for p in root.rglob("*")) == ["100pct", "landmarks", "metrics.json", "random"]


def test_cli_single_paper_run_dry_run_asks_one_gpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # No `--set num_gpus=1` any more: a run asks what FinetuneJob runs, one GPU.
    assert cli.main(["finetune", "au", "--profile", "paper", "--regime", "0.1", "--cluster", "a100x8",
                     "--dry-run", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "#SBATCH --gpus-per-node=1" in out.splitlines() and "#SBATCH --array" not in out
    assert "48 images per GPU (global batch 48)" in out and "the supplement used 2 GPUs" in out
    assert f"{tmp_path / 'au/random/10pct'}/submitit/%j" in out


@pytest.mark.parametrize("argv, message", [
    (["--init", "random=a.pth", "--init", "ours=b.pth", "--init-path", "c.pth"], "--init-path goes with a single --init"),
    (["--init", "ours=b.pth", "--init-path", "c.pth"], "give the weights file once"),
    (["--init", "random", "--init", "random"], "--init random is given twice"),
    (["--regime", "0.1", "0.1"], "lists a value twice"),
    (["--grid", "--run-dir", "x"], "--run-dir is for a single run"),
])
def test_cli_grid_argument_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv, message) -> None:
    assert cli.main(["finetune", "au", "--results", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_cli_grid_dry_run_without_a_cluster_shows_the_local_runs(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    done = tmp_path / "au/random/100pct"
    done.mkdir(parents=True)
    (done / "metrics.json").write_text("{}")
    assert cli.main(["finetune", "au", "--results", str(tmp_path), "--regime", "1.0", "0.1", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "nothing is trained, written or started" in lines[0]
    assert any(f"{tmp_path}/au/random/10pct: none: a new run" in ln for ln in lines)
    assert any(f"{done}: finished" in ln for ln in lines)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["100pct", "au", "metrics.json", "random"]


def test_cli_rejects_an_unknown_initialisation(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["finetune", "au", "--init", "vgg=x.pth"])
    assert "unknown initialisation 'vgg'" in capsys.readouterr().err


def test_page_grid_on_a_cluster_submits_what_is_missing_then_collects(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The `debug` profile runs the array's jobs in this process: the page's code path with
    # `cluster` set, without a scheduler. The runs are the demo's in-process runs, bit for bit.
    root = tmp_path / "results"
    kw = dict(profile="demo", data=TINY, overrides=FAST, seeds=[0])
    grid = G.page_grid("recon3d", {"random": None}, [1.0, 0.5], root, cluster="debug", **kw)
    out = capsys.readouterr().out
    assert "recon3d: submitted 2 run(s) as job array" in out and "on debug" in out
    assert "2 finished runs under" in out and "(2 of this page's 2)" in out
    assert sorted(grid["run"]) == ["recon3d/random/100pct", "recon3d/random/50pct"]
    assert grid["nme_box"].notna().all()
    recs = launch.job_records(root)
    assert sorted(r["run"] for r in recs) == sorted(grid["run"])
    assert {r["array"] for r in recs} == {"finetune-recon3d"} and {r["cluster"] for r in recs} == {"debug"}
    events = [e["event"] for e in launch.read_events(root / "recon3d/random/50pct")]
    assert events == ["start", "done"]
    reference = G.run_grid("recon3d", {"random": None}, [0.5], tmp_path / "in_process", progress=False, **kw)
    row = grid.set_index("run").loc["recon3d/random/50pct"]
    for k in ("nme_box", "auc_box", "n_train"):
        assert row[k] == reference.loc[0, k]
    # Rerunning the page submits nothing and reads the same runs back.
    again = G.page_grid("recon3d", {"random": None}, [1.0, 0.5], root, cluster="debug", **kw)
    assert "all 2 run(s) of the grid are finished or queued on debug; nothing submitted" in capsys.readouterr().out
    assert len((root / launch.REGISTRY_NAME).read_text().splitlines()) == 2
    assert again.drop(columns="seconds").equals(grid.drop(columns="seconds"))


def test_page_grid_without_cluster_in_the_paper_profile_says_how_to_submit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grid = G.page_grid("au", {"random": None}, [0.1], tmp_path, profile="paper")
    assert len(grid) == 0
    out = capsys.readouterr().out
    assert "0 finished runs" in out and "`cluster` parameter" in out and "--grid" in out
    assert not (tmp_path / launch.REGISTRY_NAME).exists()


def test_finetune_job_is_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = G.FinetuneJob("au", str(tmp_path / "run"), profile="demo", data=TINY, overrides=FAST)
    for k, v in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                 "MASTER_PORT": "29500"}.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(FT.FinetuneError, match="this job has 2 tasks.*one process on one GPU"):
        job()
    assert not (tmp_path / "run").exists()


def test_finetune_job_workers_follow_the_job_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    job = G.FinetuneJob("au", "/nonexistent")
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert job.workers() == 0
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "10")
    assert job.workers() == 9
    assert G.FinetuneJob("au", "/nonexistent", num_workers=2).workers() == 2
    # the resubmission on pre-emption is the same job
    resub = job.checkpoint()
    assert resub.function == job and resub.function is not job


def test_stale_runs_are_refused_or_moved_aside_and_resubmitted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A finished run made with other settings is never collected as if it were the page's.
    root = tmp_path / "results"
    kw = dict(profile="demo", overrides=FAST, on="debug", seeds=[0])
    G.submit_grid("recon3d", {"random": None}, [1.0], root, data=TINY, **kw)
    other = FT.DataSpec(n_train=12, n_test=8, size=64, num_identities=4)
    with pytest.raises(FT.StaleRunError, match="other settings"):
        G.submit_grid("recon3d", {"random": None}, [1.0], root, data=other, **kw)
    capsys.readouterr()
    G.submit_grid("recon3d", {"random": None}, [1.0], root, data=other, dry_run=True, **kw)
    out = capsys.readouterr().out
    assert "warning: " in out and "other settings" in out and "submitting would stop here" in out
    assert "skip   recon3d/random/100pct (COMPLETED)" in out
    plans: list = []  # the pipeline's dry run counts a run it would move aside as one to submit
    G.submit_grid("recon3d", {"random": None}, [1.0], root, data=other, dry_run=True, stale="rerun",
                  dry_run_plans=plans, **kw)
    out = capsys.readouterr().out
    assert "it would be moved aside and submitted afresh" in out and "  submit recon3d/random/100pct" in out
    assert [gp.runs for gp in plans] == [["recon3d/random/100pct"]] and not plans[0].settled
    grid = G.page_grid("recon3d", {"random": None}, [1.0], root, profile="demo", data=other, seeds=[0],
                       overrides=FAST, cluster="debug")
    assert "recon3d/random/100pct: made with another recipe or settings; moved to 100pct.stale" in capsys.readouterr().out
    assert list(grid["run"]) == ["recon3d/random/100pct"] and list(grid["n_train"]) == [12]
    assert json.loads((root / "recon3d/random/100pct.stale/run.json").read_text())["n_train"] == 10
