"""facelib.launch and facelib.dist without a cluster: profiles, resources, dry runs, the debug
and local executors, the job registry, resumable jobs, rank/port discovery."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
import yaml

from facelib import cli, dist, launch, recipes


# ----------------------------------------------------------------------------- cluster profiles
def test_shipped_profiles_load_and_name_their_executor() -> None:
    profiles = launch.load_clusters()
    assert {"debug", "local", "slurm-local", "v100x8"} <= set(profiles)
    assert profiles["debug"].executor == "debug"
    assert profiles["local"].executor == "local"
    assert profiles["slurm-local"].executor == "slurm"
    assert profiles["v100x8"].gpus_per_node == 8


def test_unknown_cluster_lists_the_known_ones() -> None:
    with pytest.raises(launch.LaunchError, match=r"unknown cluster 'nope'.*v100x8"):
        launch.cluster("nope")


@pytest.mark.parametrize(
    "body, message",
    [
        ({"executor": "slurm", "partion": "gpu"}, "unknown key 'partion'"),
        ({"executor": "auto"}, "executor 'auto' is not one of"),
        ({"partition": "gpu"}, "does not say its executor"),
        ({"executor": "slurm", "gpus_per_node": "8"}, "gpus_per_node = '8' has the wrong type"),
        ({"executor": "slurm", "gpus_per_node": 0}, "gpus_per_node must be >= 1"),
    ],
)
def test_bad_profiles_are_rejected_with_file_and_reason(tmp_path: Path, body: dict, message: str) -> None:
    path = tmp_path / "clusters.yaml"
    path.write_text(yaml.safe_dump({"mine": body}))
    with pytest.raises(launch.LaunchError, match=message) as info:
        launch.load_clusters(path)
    assert str(path) in str(info.value) and "'mine'" in str(info.value)


def test_clusters_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("site:\n  executor: slurm\n  partition: big\n  gpus_per_node: 4\n")
    monkeypatch.setenv("FACELIB_CLUSTERS", str(path))
    assert launch.cluster("site").partition == "big"
    monkeypatch.setenv("FACELIB_CLUSTERS", str(tmp_path / "missing.yaml"))
    with pytest.raises(launch.LaunchError, match="does not exist"):
        launch.cluster("site")


def test_profile_overrides_are_validated() -> None:
    c = launch.cluster("v100x8", partition="learnfair", account="faces", gpus_per_node=4)
    assert (c.partition, c.account, c.gpus_per_node) == ("learnfair", "faces", 4)
    assert launch.cluster("v100x8").partition == "gpu"  # the profile itself is unchanged
    with pytest.raises(launch.LaunchError, match="unknown key 'gpu'"):
        launch.cluster("v100x8", gpu=4)


# ------------------------------------------------------------------------ resources from recipes
def test_paper_pretraining_is_8_nodes_of_8_gpus_with_64_images_each() -> None:
    r = launch.resources("pretrain", "paper", "v100x8")
    assert (r.nodes, r.tasks_per_node, r.gpus_per_node) == (8, 8, 8)
    assert r.num_gpus == recipes.pretrain("paper").num_gpus == 64
    assert r.images_per_gpu == recipes.pretrain("paper").images_per_gpu == 64
    assert r.global_batch == 4096
    lr = recipes.launch("paper")
    assert r.cpus_per_task == lr.cpus_per_task
    assert r.mem_gb == lr.mem_per_task_gb * 8
    assert r.signal_delay_s == lr.signal_delay_s
    assert r.timeout_min == min(lr.pretrain_timeout_min, launch.cluster("v100x8").time_limit_min)


@pytest.mark.parametrize("task, paper_gpus", [("recognition", 8), ("landmarks", 1), ("au", 2),
                                              ("emotion", 1), ("recon3d", 2)])
def test_each_fine_tuning_run_asks_one_gpu_with_the_recipe_batch(task: str, paper_gpus: int) -> None:
    # FinetuneJob is one process: the run asks exactly one GPU and takes the whole batch there;
    # the supplement's GPU count stays in the recipe and in the record.
    r = launch.resources(task, "paper", "a100x8")
    assert recipes.task(task).num_gpus == paper_gpus
    assert recipes.launch("paper").finetune_gpus_per_run == recipes.launch("demo").finetune_gpus_per_run == 1
    assert (r.nodes, r.gpus_per_node, r.tasks_per_node, r.num_tasks) == (1, 1, 1, 1)
    assert r.images_per_gpu == r.global_batch == recipes.task(task).batch_size
    assert r.paper_gpus == (paper_gpus if paper_gpus != 1 else None)
    assert r.timeout_min == min(recipes.launch().finetune_timeout_min, 1440)
    assert launch.plan(task, "paper", "a100x8").parameters["gpus_per_node"] == 1


def test_recognition_dry_run_states_the_one_gpu_choice() -> None:
    s = launch.plan("recognition", "paper", "v100x8").summary()
    assert "1 node(s) x 1 GPU(s) = 1 GPUs" in s and "512 images per GPU (global batch 512)" in s
    assert "the supplement used 8 GPUs (64 images each)" in s


def test_more_than_one_gpu_per_fine_tuning_run_is_refused() -> None:
    with pytest.raises(launch.LaunchError, match="finetune_gpus_per_run = 2.*one process on one GPU"):
        launch.resources("au", "paper", "a100x8", finetune_gpus_per_run=2)


def test_gpus_that_do_not_fill_whole_nodes_are_an_error() -> None:
    with pytest.raises(launch.LaunchError, match="64 GPUs do not fill whole nodes of 6 GPUs"):
        launch.resources("pretrain", "paper", launch.cluster("v100x8", gpus_per_node=6))
    with pytest.raises(launch.LaunchError, match="runs on one node"):
        launch.resources("pretrain", "paper", "local")
    with pytest.raises(launch.LaunchError, match="unknown job kind 'swav'"):
        launch.resources("swav", "paper", "v100x8")


def test_cluster_values_override_the_recipe_per_task_values() -> None:
    r = launch.resources("pretrain", "demo", "slurm-local")
    assert (r.nodes, r.gpus_per_node, r.cpus_per_task, r.mem_gb) == (1, 1, 1, 0)
    assert r.timeout_min >= 11  # shorter limits make submitit count every interrupt as a time-out


# ----------------------------------------------------------------------------------- dry runs
def test_dry_run_prints_the_exact_sbatch_script_without_sbatch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no srun/sbatch: planning must not need them
    p = launch.plan("pretrain", "paper", "v100x8", folder="/runs/pretrain/submitit/%j")
    for line in ("#SBATCH --nodes=8", "#SBATCH --gpus-per-node=8", "#SBATCH --ntasks-per-node=8",
                 "#SBATCH --cpus-per-task=10", "#SBATCH --partition=gpu",
                 "#SBATCH --constraint=volta32gb", "#SBATCH --signal=USR2@120",
                 "#SBATCH --time=4320", "#SBATCH --mem=448GB"):
        assert line in p.script.splitlines(), line
    assert "--kill-on-bad-exit=1" in p.script
    assert "#SBATCH --account" not in p.script  # null in the profile: not passed
    s = p.summary()
    assert "8 node(s) x 8 GPU(s) = 64 GPUs" in s and "64 images per GPU (global batch 4096)" in s


def test_dry_run_matches_what_submitit_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import submitit

    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 2))
    res = launch.resources("au", "paper", "a100x8")
    ex = launch.make_executor("a100x8", tmp_path / "%j", res)
    written = ex._make_submission_file_text(ex._submitit_command_str, "x")
    assert launch.plan("au", "paper", "a100x8", folder=tmp_path / "%j").script == written


def test_array_dry_run_matches_what_submitit_writes_for_an_array(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import submitit

    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 2))
    res = launch.resources("landmarks", "paper", "a100x8")
    ex = launch.make_executor("a100x8", tmp_path / "%j", res)
    ex.parameters["map_count"] = 5  # what SlurmExecutor._internal_process_submissions sets for 5 jobs
    written = ex._make_submission_file_text(ex._submitit_command_str, "x")
    script = launch.plan("landmarks", "paper", "a100x8", folder=tmp_path / "%j", array=5).script
    assert script == written and "#SBATCH --array=0-4%5" in script.splitlines()
    # array_parallelism of the profile caps the elements running at once
    many = launch.plan("landmarks", "paper", launch.cluster("a100x8", array_parallelism=3),
                       folder=tmp_path / "%j", array=5)
    assert "#SBATCH --array=0-4%3" in many.script.splitlines()
    assert "job array of 5 runs (one element per run, at most 3 at once)" in many.summary()


def test_plan_grid_skips_finished_and_running_runs_and_submits_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # a dry run needs no SLURM client
    root = tmp_path / "r"
    grid = launch.finetune_grid(inits=("random", "ours"), tasks=("landmarks", "au"), regimes=(1.0, 0.1))
    done = root / "landmarks/random/100pct"
    done.mkdir(parents=True)
    (done / "metrics.json").write_text("{}")
    # a run whose job is still running (a local job: this very process) is not submitted twice
    launch._record(root, {"run": "au/ours/10pct", "job_id": str(os.getpid()), "cluster": "local",
                          "executor": "local", "folder": str(tmp_path), "results": str(root / "au/ours/10pct")})
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    plans = launch.plan_grid(grid, profile="paper", on="v100x8", results_root=root, name="g")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written
    by_task = {gp.task: gp for gp in plans}
    assert list(by_task) == ["landmarks", "au"]
    lm, au = by_task["landmarks"], by_task["au"]
    assert lm.runs == ["landmarks/ours/100pct", "landmarks/random/10pct", "landmarks/ours/10pct"]
    assert list(lm.settled) == ["landmarks/random/100pct"] and lm.settled["landmarks/random/100pct"].state == "COMPLETED"
    assert au.runs == ["au/random/100pct", "au/ours/100pct", "au/random/10pct"]
    assert list(au.settled) == ["au/ours/10pct"] and au.settled["au/ours/10pct"].state == "RUNNING"
    assert "#SBATCH --array=0-2%3" in lm.plan.script.splitlines()
    assert "#SBATCH --gpus-per-node=1" in lm.plan.script.splitlines()
    assert f"{(root / '_arrays' / 'g-landmarks').absolute()}/%A_%a/%A_%a_0_log.out" in lm.plan.script
    text = lm.summary()
    assert "submit landmarks/ours/100pct" in text and "skip   landmarks/random/100pct (COMPLETED)" in text
    # every run settled: nothing to plan for that task
    for run in lm.runs:
        (root / run).mkdir(parents=True, exist_ok=True)
        (root / run / "metrics.json").write_text("{}")
    [lm2] = [gp for gp in launch.plan_grid(grid, profile="paper", on="v100x8", results_root=root)
             if gp.task == "landmarks"]
    assert lm2.runs == [] and lm2.plan is None and len(lm2.settled) == 4


def test_jobs_plan_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["jobs", "plan", "pretrain", "--profile", "paper", "--cluster", "v100x8",
                     "--cluster-set", "partition=learnfair", "--cluster-set", "qos=high"]) == 0
    out = capsys.readouterr().out
    assert "#SBATCH --partition=learnfair" in out and "#SBATCH --qos=high" in out
    assert "#SBATCH --nodes=8" in out


def test_launch_from_args_dry_run_submits_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="paper")
    launch.add_cluster_arguments(parser, submit_hook=launch.submit_from_cli)
    assert getattr(parser.parse_args([]), "submit", None) is None  # no --cluster: run in-process
    args = parser.parse_args(["--cluster", "v100x8", "--dry-run", "--results", str(tmp_path)])
    assert args.submit is launch.submit_from_cli
    ran: list[int] = []
    job = launch.CountingJob(tmp_path / "run", n_steps=1)
    job.__call__ = lambda: ran.append(1)  # type: ignore[method-assign]
    assert launch.launch_from_args(args, job, "pretrain", tmp_path / "run") == 0
    assert ran == [] and not (tmp_path / launch.REGISTRY_NAME).exists()
    out = capsys.readouterr().out
    assert "#SBATCH --nodes=8" in out and "64 images per GPU" in out
    # The job's own recipe (e.g. with --set overrides) sets the resources.
    small = recipes.pretrain("paper", num_gpus=16, batch_size=1024)
    assert launch.launch_from_args(args, job, "pretrain", tmp_path / "run", recipe=small) == 0
    assert "#SBATCH --nodes=2" in capsys.readouterr().out
    with pytest.raises(launch.LaunchError, match="--cluster"):
        launch.launch_from_args(parser.parse_args(["--dry-run"]), job, "pretrain", tmp_path)


def test_facelib_pretrain_dry_run_prints_the_paper_layout(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["pretrain", "--profile", "paper", "--cluster", "v100x8", "--dry-run",
                     "--out", str(tmp_path / "swav"), "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "8 node(s) x 8 GPU(s) = 64 GPUs" in out and "64 images per GPU (global batch 4096)" in out
    for line in ("#SBATCH --nodes=8", "#SBATCH --gpus-per-node=8", "#SBATCH --ntasks-per-node=8"):
        assert line in out.splitlines()
    assert f"{tmp_path / 'swav'}/submitit/%j" in out
    assert not (tmp_path / launch.REGISTRY_NAME).exists() and not (tmp_path / "swav").exists()


def test_launch_from_args_submits_and_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="demo")
    launch.add_cluster_arguments(parser)
    args = parser.parse_args(["--cluster", "debug", "--results", str(tmp_path / "r"), "--wait", "30"])
    job = launch.CountingJob(tmp_path / "r" / "count", n_steps=3)
    assert launch.launch_from_args(args, job, "pretrain", tmp_path / "r" / "count") == 0
    out = capsys.readouterr().out
    assert "submitted pretrain as job DEBUG_" in out and '"steps": 3' in out
    [rec] = launch.job_records(tmp_path / "r")
    assert rec["run"] == "count" and rec["results"] == str((tmp_path / "r" / "count").absolute())


# ----------------------------------------------------------------------- jobs and executors
def test_counting_job_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    full = launch.CountingJob(tmp_path / "full", n_steps=9)()
    part = tmp_path / "part"
    part.mkdir()
    # A checkpoint written after 4 of 9 steps by an earlier run of the same job:
    value = 0
    for step in range(4):
        value = launch._mix(value, step)
    (part / "state.json").write_text(json.dumps({"step": 4, "value": value}))
    assert launch.CountingJob(part, n_steps=9)() == full
    events = launch.read_events(part)
    assert [e["event"] for e in events] == ["start", "resume", "done"] and events[1]["step"] == 4
    assert launch.CountingJob(tmp_path / "other", n_steps=9, seed=1)()["value"] != full["value"]


def test_corrupt_checkpoint_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text('{"step": 3}')
    with pytest.raises(launch.CheckpointError, match=r"state\.json: corrupt checkpoint"):
        launch.CountingJob(tmp_path, n_steps=5)()
    assert launch.read_events(tmp_path)[-1]["event"] == "failed"
    with pytest.raises(ValueError, match="n_steps"):
        launch.CountingJob(tmp_path, n_steps=0)


def test_checkpoint_returns_a_resubmission_of_the_same_job(tmp_path: Path) -> None:
    import pickle

    job = launch.CountingJob(tmp_path, n_steps=3)
    delayed = job.checkpoint()
    assert delayed.function is job
    clone = pickle.loads(pickle.dumps(delayed.function))
    assert clone() == launch.CountingJob(tmp_path / "ref", n_steps=3)()


def test_debug_executor_runs_in_process_and_records_the_run(tmp_path: Path) -> None:
    res = launch.cpu_resources("dbg")
    job = launch.submit(launch.CountingJob(tmp_path / "r" / "a", n_steps=4), run="a", on="debug",
                        res=res, results_root=tmp_path / "r")
    [rec] = launch.job_records(tmp_path / "r")
    assert rec["executor"] == "debug" and rec["run"] == "a"
    assert launch.status(tmp_path / "r")[0].state.startswith("NOT_RUN")
    assert launch.wait(job, 30) == launch.CountingJob(tmp_path / "ref", n_steps=4)()


def test_debug_executor_surfaces_exceptions(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "state.json").write_text("garbage")
    ex = launch.make_executor("debug", tmp_path / "sub", launch.cpu_resources("x"))
    job = ex.submit(launch.CountingJob(tmp_path / "bad", n_steps=2))
    with pytest.raises(launch.CheckpointError, match="corrupt checkpoint"):
        launch.wait(job, 30)  # raises; submitit's own DebugJob.result() would open pdb


@pytest.mark.slow
def test_local_executor_runs_two_gloo_tasks(tmp_path: Path) -> None:
    res = launch.cpu_resources("probe", tasks=2)
    job = launch.submit(launch.ProbeJob(tmp_path / "r" / "p"), run="p", on="local", res=res,
                        results_root=tmp_path / "r")
    reports = launch.wait(job, 150)
    assert sorted(r["rank"] for r in reports) == [0, 1]
    assert all(r["sum"] == 3.0 and r["backend"] == "gloo" for r in reports)
    _ = [s for s in launch.status(tmp_path / "r") if s.run == "p" and s.state == "COMPLETED"]
    assert _, launch.status(tmp_path / "r")


@pytest.mark.slow
def test_local_executor_single_job_and_status(tmp_path: Path) -> None:
    res = launch.cpu_resources("count")
    job = launch.submit(launch.CountingJob(tmp_path / "r" / "c", n_steps=5), run="c", on="local",
                        res=res, results_root=tmp_path / "r")
    assert launch.wait(job, 60) == launch.CountingJob(tmp_path / "ref", n_steps=5)()
    [s] = launch.status(tmp_path / "r")
    assert s.state == "COMPLETED" and "state.json" in s.result_files


def test_wait_has_a_deadline(tmp_path: Path) -> None:
    class Never:
        job_id = "42"
        state = "PENDING"
        num_tasks = 1

        class paths:  # noqa: N801 - mimics submitit's JobPaths
            stderr = tmp_path / "42.err"
            result_pickle = tmp_path / "42.pkl"

        def done(self, force_check: bool = False) -> bool:
            return False

    with pytest.raises(launch.JobTimeout, match="job 42 not finished after 0 s .state PENDING."):
        launch.wait(Never(), 0.3, poll_s=0.05)


def test_submit_once_does_not_resubmit_finished_or_queued_runs(tmp_path: Path) -> None:
    root = tmp_path / "r"
    res = launch.cpu_resources("once")
    first = launch.submit_once(launch.CountingJob(root / "x", n_steps=2), run="x", on="local",
                               res=res, results_root=root, done_file="state.json")
    assert first.state == "SUBMITTED" and first.job_id
    # Still queued or running, or finished: a second call submits nothing new.
    again = launch.submit_once(launch.CountingJob(root / "x", n_steps=2), run="x", on="local",
                               res=res, results_root=root, done_file="state.json")
    assert again.job_id == first.job_id
    (root / "x").mkdir(parents=True, exist_ok=True)
    (root / "x" / "state.json").write_text('{"step": 2, "value": 1}')
    done = launch.submit_once(launch.CountingJob(root / "x", n_steps=2), run="x", on="local",
                              res=res, results_root=root, done_file="state.json")
    assert done.state == "COMPLETED" and done.job_id == first.job_id
    assert len((root / launch.REGISTRY_NAME).read_text().splitlines()) == 1


# ------------------------------------------------------------------------------------- grid
def test_finetune_grid_shape_and_run_names() -> None:
    grid = launch.finetune_grid(inits=("scratch", "swav-vggface2", "imagenet"))
    assert len(grid) == len(recipes.TASKS) * len(recipes.sampling().regimes) * 3
    assert len({p.run for p in grid}) == len(grid)
    assert launch.GridPoint("au", 0.02, "scratch").run == "au/scratch/2pct"
    assert launch.GridPoint("au", 1.0, "scratch").run == "au/scratch/100pct"
    with pytest.raises(launch.LaunchError, match="unknown task 'age'"):
        launch.finetune_grid(inits=("scratch",), tasks=("age",))
    with pytest.raises(launch.LaunchError, match="regime 2"):
        launch.finetune_grid(inits=("scratch",), regimes=(2,))


def test_registry_keeps_the_latest_record_per_run(tmp_path: Path) -> None:
    (tmp_path / launch.REGISTRY_NAME).write_text(
        json.dumps({"run": "a", "job_id": "1"}) + "\n" + json.dumps({"run": "a", "job_id": "2"}) + "\n")
    assert [r["job_id"] for r in launch.job_records(tmp_path)] == ["2"]
    (tmp_path / launch.REGISTRY_NAME).write_text("{oops\n")
    with pytest.raises(launch.LaunchError, match=r"jobs\.jsonl:1: not a job record"):
        launch.job_records(tmp_path)


def test_pending_array_ids_expand() -> None:
    assert launch._expand_array_ids("12_[0-2,5%2]") == ["12_0", "12_1", "12_2", "12_5"]
    assert launch._expand_array_ids("12_3") == ["12_3"]


# ------------------------------------------------------------------------------------- dist
@pytest.mark.parametrize(
    "nodelist, hosts",
    [
        ("vm", ["vm"]),
        ("gpu[01-03,7],login", ["gpu01", "gpu02", "gpu03", "gpu7", "login"]),
        ("learnfair[0218-0219]", ["learnfair0218", "learnfair0219"]),
        ("r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
        ("a[9-10]-ib", ["a9-ib", "a10-ib"]),
    ],
)
def test_expand_nodelist(nodelist: str, hosts: list[str]) -> None:
    assert dist.expand_nodelist(nodelist) == hosts


@pytest.mark.parametrize("bad", ["gpu[01-03", "gpu01]", "gpu[a-b]", "gpu[5-3]"])
def test_expand_nodelist_rejects_malformed_lists(bad: str) -> None:
    with pytest.raises(dist.DistError, match="node list"):
        dist.expand_nodelist(bad)


def test_detect_from_bare_slurm_environment() -> None:
    env = {"SLURM_JOB_ID": "77", "SLURM_PROCID": "13", "SLURM_LOCALID": "5", "SLURM_NTASKS": "16",
           "SLURM_NODEID": "1", "SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_NODELIST": "gpu[07-08]",
           # the SwAV scripts read the world size from the first character of this: "8(x2)" -> 8
           "SLURM_TASKS_PER_NODE": "8(x2)"}
    d = dist.detect(env)
    assert (d.rank, d.local_rank, d.world_size, d.node, d.num_nodes) == (13, 5, 16, 1, 2)
    assert d.master_addr == "gpu07" and d.source == "slurm" and d.job_id == "77"


def test_detect_single_node_uses_loopback_and_torchrun_env() -> None:
    d = dist.detect({"SLURM_JOB_ID": "5", "SLURM_PROCID": "1", "SLURM_NTASKS": "2",
                     "SLURM_JOB_NODELIST": "unresolvable-host"})
    assert d.master_addr == "127.0.0.1"
    t = dist.detect({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert (t.rank, t.world_size, t.local_rank, t.num_nodes, t.source) == (3, 4, 1, 2, "torchrun")
    s = dist.detect({})
    assert (s.rank, s.world_size, s.source) == (0, 1, "single")


def test_detect_rejects_inconsistent_environments() -> None:
    with pytest.raises(dist.DistError, match="rank 4 is outside world size 4"):
        dist.detect({"SLURM_JOB_ID": "1", "SLURM_PROCID": "4", "SLURM_NTASKS": "4"})
    with pytest.raises(dist.DistError, match="node list has 1 hosts"):
        dist.detect({"SLURM_JOB_ID": "1", "SLURM_PROCID": "0", "SLURM_NTASKS": "4",
                     "SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_NODELIST": "a1"})
    with pytest.raises(dist.DistError, match="SLURM_NTASKS='x' is not an integer"):
        dist.detect({"SLURM_JOB_ID": "1", "SLURM_PROCID": "0", "SLURM_NTASKS": "x"})


def _env(rank: int, folder: Path, restart: int = 0) -> dist.DistEnv:
    return dist.DistEnv(rank=rank, local_rank=rank, world_size=2, node=0, num_nodes=1,
                        hostnames=("h",), job_id="9_1", restart=restart, source="submitit",
                        rendezvous_dir=folder)


def test_rank0_port_reaches_the_other_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MASTER_PORT", raising=False)
    got: list[int] = []
    reader = threading.Thread(target=lambda: got.append(dist.master_port(_env(1, tmp_path), 20)))
    reader.start()
    port = dist.master_port(_env(0, tmp_path))
    reader.join(30)
    assert got == [port] and 0 < port < 65536
    # A requeued job (restart 1) never reads the port of its previous run.
    with pytest.raises(dist.DistError, match=r"no port from rank 0 in .*\.dist-9_1-1\.port"):
        dist.master_port(_env(1, tmp_path, restart=1), timeout_s=0.3)


def test_init_distributed_single_process_gloo(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    import torch.distributed as td

    for key in ("MASTER_PORT", "MASTER_ADDR", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    env = dist.detect({})
    try:
        got = dist.init_distributed("gloo", timeout_s=30, env=env)
        t = torch.ones(2)
        td.all_reduce(t)
        assert got.world_size == 1 and td.get_backend() == "gloo" and t.tolist() == [1.0, 1.0]
        assert os.environ["MASTER_ADDR"] == "127.0.0.1"
    finally:
        dist.destroy()


def test_jobs_probe_cli_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("MASTER_PORT", "MASTER_ADDR", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert cli.main(["jobs", "probe", "--cluster", "debug", "--tasks", "1",
                     "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "rank 0/1" in out and "backend gloo" in out and out.rstrip().endswith("OK")
    [probe] = list(tmp_path.glob("probe/*/probe.json"))
    assert json.loads(probe.read_text())["sum"] == 1.0


@pytest.mark.slow
def test_rerunning_a_grid_submits_only_what_is_missing(tmp_path: Path) -> None:
    root = tmp_path / "r"
    grid = launch.finetune_grid(inits=("scratch",), tasks=("au", "emotion"), regimes=(1.0, 0.1))
    make = lambda p, run_dir: launch.CountingJob(run_dir, n_steps=1)  # noqa: E731
    first = launch.submit_grid(make, grid, profile="demo", on="local", results_root=root,
                               done_file="state.json")
    assert sum(len(v) for v in first.values()) == 4
    for jobs in first.values():
        for job in jobs:
            launch.wait(job, 60)
    # One run lost its results (as after a failure): only that one is submitted again.
    (root / grid[0].run / "state.json").unlink()
    again = launch.submit_grid(make, grid, profile="demo", on="local", results_root=root,
                               done_file="state.json")
    [rerun] = [j for js in again.values() for j in js]
    assert list(again) == ["au"]
    launch.wait(rerun, 60)
    settled = launch.settled_runs([p.run for p in grid], root, "state.json")
    assert "COMPLETED" in str(settled[grid[1].run]) and grid[1].run in str(settled[grid[1].run])


def test_resolve_host_falls_back_to_slurm_or_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    assert dist.resolve_host("localhost") == "localhost"
    monkeypatch.setenv("PATH", "/nonexistent")  # no scontrol to ask
    with pytest.raises(dist.DistError, match="'no-such-node.invalid' does not resolve"):
        dist.resolve_host("no-such-node.invalid")
