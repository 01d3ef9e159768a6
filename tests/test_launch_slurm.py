"""facelib.launch against a real SLURM controller on localhost (slurm/start.sh).

Every test submits through ``facelib.launch`` to the ``slurm-local`` profile, has a hard
deadline and a fresh submitit folder. Slow: the cluster starts once per session (a few seconds;
the packages are installed first when missing).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from submitit.core.utils import FailedJobError

from facelib import cli, launch
from slurm_fixtures import cancel_all, hard_deadline, slurm_cluster, submitit_root  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("slurm_cluster", "hard_deadline")]

ON = "slurm-local"


def _poll(what: str, fn, timeout_s: float = 60.0, every_s: float = 0.3, show=None):
    """Call ``fn`` until it returns something truthy; fail naming ``what`` after ``timeout_s``
    (with ``show()`` in the message, if given)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f"; last seen: {show()}" if show else ""
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}{seen}")
        time.sleep(every_s)


def _state_of(root: Path, run: str) -> str:
    return {s.run: s.state for s in launch.status(root)}.get(run, "")


def test_single_job_returns_its_result(submitit_root: Path) -> None:
    res = launch.cpu_resources("count", timeout_min=15)
    job = launch.submit(launch.CountingJob(submitit_root / "one", n_steps=7), run="one", on=ON,
                        res=res, results_root=submitit_root)
    try:
        out = launch.wait(job, 90)
    except BaseException:  # a finishing job must not be cancelled: only on failure
        cancel_all([job.job_id])
        raise
    expected = launch.CountingJob(submitit_root / "reference", n_steps=7)()
    assert out == expected
    assert Path(job.paths.folder, f"{job.job_id}_submission.sh").read_text().count("#SBATCH --partition=debug") == 1
    # sacct lags the result pickle: poll for the state the registry reports.
    _poll("COMPLETED in facelib jobs status", lambda: _state_of(submitit_root, "one") == "COMPLETED")
    # Accounting itself (what submitit relies on to see a job end without a result):
    _poll("sacct to report the job COMPLETED", lambda: subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "State", "-j", str(job.job_id)], capture_output=True,
        text=True).stdout.strip() == "COMPLETED", 120, 1.0)


def test_two_tasks_all_reduce_over_gloo(submitit_root: Path) -> None:
    res = launch.cpu_resources("probe", tasks=2, timeout_min=15)
    job = launch.submit(launch.ProbeJob(submitit_root / "probe"), run="probe", on=ON, res=res,
                        results_root=submitit_root)
    try:
        reports = launch.wait(job, 150)
    except BaseException:  # a finishing job must not be cancelled: only on failure
        cancel_all([job.job_id])
        raise
    assert [r["rank"] for r in reports] == [0, 1]
    for r in reports:
        assert r["world_size"] == 2 and r["backend"] == "gloo" and r["source"] == "submitit"
        assert r["sum"] == 3.0  # (0 + 1) + (1 + 1)
        assert r["master_addr"] == "127.0.0.1"  # one node: never depends on the host name
        assert r["job_id"] == str(job.job_id)
    assert {t["local_rank"] for t in reports[0]["tasks"]} == {0, 1}
    written = json.loads((submitit_root / "probe" / "probe.json").read_text())
    assert written["sum"] == 3.0 and len(written["tasks"]) == 2


def test_two_nodes_wire_ranks_from_the_node_list(submitit_root: Path, slurm_cluster,  # noqa: F811
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert slurm_cluster.nodes == 2
    assert cli.main(["jobs", "probe", "--cluster", ON, "--nodes", "2", "--tasks", "2",
                     "--timeout", "150", "--results", str(submitit_root)]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("OK")
    [path] = list(submitit_root.glob("probe/*/probe.json"))
    report = json.loads(path.read_text())
    tasks = sorted(report["tasks"], key=lambda t: t["rank"])
    assert report["sum"] == 10.0 and report["world_size"] == 4  # 1 + 2 + 3 + 4
    assert [(t["rank"], t["node"], t["local_rank"]) for t in tasks] == [
        (0, 0, 0), (1, 0, 1), (2, 1, 0), (3, 1, 1)]
    assert [t["node_name"] for t in tasks] == ["node1", "node1", "node2", "node2"]
    # The master is the first host of the node list, not a hard-coded or local name.
    assert {t["master_addr"] for t in tasks} == {"node1"}
    assert all(t["hostnames"] == ["node1", "node2"] for t in tasks)


def test_finetune_grid_runs_as_job_arrays(submitit_root: Path) -> None:
    grid = launch.finetune_grid(inits=("scratch", "swav-vggface2"), regimes=(1.0, 0.02))
    jobs = launch.submit_grid(lambda p, run_dir: launch.CountingJob(run_dir, n_steps=3), grid,
                              profile="demo", on=ON, results_root=submitit_root, name="grid")
    all_ids = [j.job_id for js in jobs.values() for j in js]
    try:
        assert list(jobs) == list(launch.recipes.TASKS)
        for task, task_jobs in jobs.items():
            assert len(task_jobs) == 4
            array_ids = {j.job_id.split("_")[0] for j in task_jobs}
            assert len(array_ids) == 1, f"{task}: one array per task, got {array_ids}"
            assert [j.job_id.split("_")[1] for j in task_jobs] == ["0", "1", "2", "3"]
        for task_jobs in jobs.values():
            for j in task_jobs:
                assert launch.wait(j, 150)["steps"] == 3
    except BaseException:  # a finishing job must not be cancelled: only on failure
        cancel_all(all_ids)
        raise
    for point, job in zip(grid, [j for js in jobs.values() for j in js]):
        run_dir = submitit_root / point.run
        start = [e for e in launch.read_events(run_dir) if e["event"] == "start"]
        assert start and start[0]["array"] == job.job_id  # the element ran in its own results dir
        assert start[0]["gpus"] is not None and len(start[0]["gpus"].split(",")) == 1  # demo: 1 GPU
        assert json.loads((run_dir / "state.json").read_text())["step"] == 3
    rows = _poll(
        "all 20 grid runs COMPLETED",
        lambda: (lambda r: r if len(r) == 20 and all(s.state == "COMPLETED" for s in r) else None)(
            launch.status(submitit_root)),
        show=lambda: [(s.run, s.job_id, s.state) for s in launch.status(submitit_root)],
    )
    assert {r.run for r in rows} == {p.run for p in grid}


def test_cancelled_job_is_seen_as_cancelled(submitit_root: Path) -> None:
    res = launch.cpu_resources("long", timeout_min=15)
    run_dir = submitit_root / "long"
    job = launch.submit(launch.CountingJob(run_dir, n_steps=600, step_s=0.5), run="long", on=ON,
                        res=res, results_root=submitit_root)
    try:
        _poll("the job to start counting", lambda: (run_dir / "state.json").exists(), 90)
        job.cancel()
        with pytest.raises(launch.JobEndedWithoutResult, match="CANCELLED"):
            launch.wait(job, 60)
    except BaseException:  # a finishing job must not be cancelled: only on failure
        cancel_all([job.job_id])
        raise
    _poll("CANCELLED in facelib jobs status",
          lambda: _state_of(submitit_root, "long").startswith("CANCELLED"))


def test_usr2_checkpoints_requeues_and_resumes(submitit_root: Path) -> None:
    # timeout_min >= 11, so submitit counts the interrupt as a pre-emption, not a time-out.
    res = launch.cpu_resources("requeue", timeout_min=15)
    run_dir = submitit_root / "requeue"
    n = 40
    job = launch.submit(launch.CountingJob(run_dir, n_steps=n, step_s=0.25), run="requeue", on=ON,
                        res=res, results_root=submitit_root)
    try:
        state = run_dir / "state.json"
        _poll("a few checkpointed steps",
              lambda: state.exists() and json.loads(state.read_text())["step"] >= 4, 90, 0.05)
        launch.interrupt(job)
        t_signal = time.monotonic()
        _poll("the requeued job to resume",
              lambda: any(e["event"] == "resume" for e in launch.read_events(run_dir)), 90, 0.1)
        print(f"\nrequeue to running: {time.monotonic() - t_signal:.1f} s")
        out = launch.wait(job, 120)
    except BaseException:  # a finishing job must not be cancelled: only on failure
        cancel_all([job.job_id])
        raise
    uninterrupted = launch.make_executor("debug", submitit_root / "debug", res).submit(
        launch.CountingJob(submitit_root / "uninterrupted", n_steps=n))
    assert out == uninterrupted.result()
    events = launch.read_events(run_dir)
    kinds = [e["event"] for e in events]
    assert kinds == ["start", "begin", "checkpoint", "start", "resume", "done"], kinds
    resume = events[4]
    assert resume["restart"] == 1 and resume["job_id"] == str(job.job_id)
    assert 4 <= resume["step"] < n  # continued from its checkpoint, not from 0
    log = Path(job.paths.stderr).read_text()
    assert "this job is preempted" in log


def test_exception_in_job_surfaces_with_traceback(submitit_root: Path) -> None:
    run_dir = submitit_root / "broken"
    run_dir.mkdir()
    (run_dir / "state.json").write_text("{not json")
    res = launch.cpu_resources("broken", timeout_min=15)
    job = launch.submit(launch.CountingJob(run_dir, n_steps=5), run="broken", on=ON, res=res,
                        results_root=submitit_root)
    try:
        with pytest.raises(FailedJobError) as info:
            launch.wait(job, 90)
    except BaseException:  # a finishing job must not be cancelled: only on failure
        cancel_all([job.job_id])
        raise
    message = str(info.value)
    assert "CheckpointError" in message and "corrupt checkpoint" in message
    assert str(run_dir / "state.json") in message
    assert "Traceback" in message and "_load_state" in message
    assert launch.read_events(run_dir)[-1]["event"] == "failed"
    _poll("FAILED in facelib jobs status", lambda: _state_of(submitit_root, "broken") == "FAILED")


def test_jobs_status_cli_lists_runs(submitit_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = launch.cpu_resources("status", timeout_min=15)
    job = launch.submit(launch.CountingJob(submitit_root / "st", n_steps=2), run="st", on=ON,
                        res=res, results_root=submitit_root)
    try:
        launch.wait(job, 90)
    except BaseException:  # a finishing job must not be cancelled: only on failure
        cancel_all([job.job_id])
        raise
    _poll("COMPLETED", lambda: _state_of(submitit_root, "st") == "COMPLETED")
    assert cli.main(["jobs", "status", "--results", str(submitit_root)]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("st ")][0]
    assert str(job.job_id) in line and "COMPLETED" in line and ON in line
    assert str((submitit_root / "st").absolute()) in line


def test_failure_in_a_multi_task_job_surfaces_without_waiting_for_the_others(submitit_root: Path) -> None:
    # NCCL without a GPU fails inside every task; the first traceback ends the wait.
    res = launch.cpu_resources("nccl", tasks=2, timeout_min=15)
    job = launch.submit(launch.ProbeJob(submitit_root / "nccl", backend="nccl"), run="nccl", on=ON,
                        res=res, results_root=submitit_root)
    try:
        with pytest.raises(FailedJobError, match="backend nccl needs a GPU"):
            launch.wait(job, 150)
    except BaseException:  # a finishing job must not be cancelled: only on failure
        cancel_all([job.job_id])
        raise
    _poll("the job to end", lambda: _state_of(submitit_root, "nccl") in {"FAILED", "CANCELLED"},
          show=lambda: _state_of(submitit_root, "nccl"))


def test_finetune_grid_cli_submits_an_array_and_the_page_collects_it(
        submitit_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Issue 8, item 6: a tiny real fine-tuning grid (demo sizes, 2 regimes x 1 init) submitted by
    # `facelib finetune --cluster` as one job array of one-GPU runs; once it has finished, the
    # page's grid (cluster set) submits nothing more and reads the runs' metrics back.
    from facelib.tasks import finetune as FT
    from facelib.tasks import grid as task_grid

    data = ["--n-train", "10", "--n-test", "8", "--size", "64", "--identities", "4"]
    recipe = ["--set", "epochs=1", "--set", "batch_size=8", "--set", "seeds=[0]"]  # one run per cell
    assert cli.main(["finetune", "recon3d", "--regime", "1.0", "0.5", "--cluster", ON, "--results",
                     str(submitit_root), *data, *recipe]) == 0
    out = capsys.readouterr().out
    assert "recon3d: submitted 2 run(s) as job array" in out
    recs = launch.job_records(submitit_root)
    ids = [r["job_id"] for r in recs]
    try:
        assert sorted(r["run"] for r in recs) == ["recon3d/random/100pct", "recon3d/random/50pct"]
        assert len({i.split("_")[0] for i in ids}) == 1 and sorted(i.split("_")[1] for i in ids) == ["0", "1"]
        _poll("both array elements COMPLETED",
              lambda: all(s.state == "COMPLETED" for s in launch.status(submitit_root)), 170, 1.0,
              show=lambda: [(s.run, s.job_id, s.state) for s in launch.status(submitit_root)])
    except BaseException:  # a finishing job must not be cancelled: only on failure
        cancel_all(ids)
        raise
    for rec in recs:
        run_dir = submitit_root / rec["run"]
        assert (run_dir / "metrics.json").exists()
        start = [e for e in launch.read_events(run_dir) if e["event"] == "start"][0]
        assert start["array"] == rec["job_id"]  # ran as its own element of the array
        assert start["gpus"] is not None and len(start["gpus"].split(",")) == 1  # one GPU per run
    grid = task_grid.page_grid("recon3d", {"random": None}, [1.0, 0.5], submitit_root, profile="demo",
                               data=FT.DataSpec(n_train=10, n_test=8, size=64, num_identities=4),
                               overrides={"epochs": 1, "batch_size": 8, "seeds": [0]}, cluster=ON)
    out = capsys.readouterr().out
    assert "all 2 run(s) of the grid are finished or queued on slurm-local; nothing submitted" in out
    assert "(2 of this page's 2)" in out
    assert len(launch.job_records(submitit_root)) == 2
    assert sorted(grid["run"]) == ["recon3d/random/100pct", "recon3d/random/50pct"]
    assert list(grid.sort_values("run")["n_train"]) == [10, 5] and grid["nme_box"].notna().all()
