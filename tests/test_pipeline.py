"""Issue 16, item 2: ``facelib pipeline``, the whole chain as SLURM jobs linked by ``afterok``.

Fast: the paper profile's dry run on the ``v100x8`` template prints every step's sbatch script
and the dependency graph and writes nothing; bad arguments are one line and exit 2. Slow, on
the local SLURM (``tests/slurm_fixtures.py``): the whole chain at toy size (30 generated photos,
one pretraining epoch at demo sizes, one regime per task) ends with the results page showing the
chain's runs, and a rerun submits nothing; a failed step stops its dependants and the status
names the failed job and its log.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from facelib import cli, launch, recipes
from facelib.launch import chain as chainmod
from facelib.tasks import grid as task_grid

from faces_fixtures import many_faces
from slurm_fixtures import cancel_all, slurm_cluster  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
ON = "slurm-local"
STEPS = ["preprocess", "preprocess-merge", "pretrain", *[f"finetune-{t}" for t in recipes.TASKS], "results-page"]


def test_paper_dry_run_prints_every_script_and_the_graph(tmp_path, capsys):
    results = tmp_path / "results"
    assert cli.main(["pipeline", "--profile", "paper", "--cluster", "v100x8", "--dry-run", "--results",
                     str(results), "--images", str(tmp_path / "photos"), "--shards", str(tmp_path / "shards")]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing is submitted or written" in out
    for step in STEPS:
        assert f"\n== {step}" in out or step.startswith("preprocess-"), step
    # the scripts: preprocessing element and merge, 8 x 8 GPU pretraining after the merge, one array
    # of every regime x {random, ours} per task after the pretraining, the page after the five grids
    assert out.count("#!/bin/bash") == 2 + 1 + len(recipes.TASKS) + 1
    assert "#SBATCH --dependency='afterok:<the array above>'" in out
    assert "#SBATCH --dependency='afterok:<preprocess-merge>'" in out and "#SBATCH --nodes=8" in out
    n_runs = 2 * len(recipes.sampling().regimes)
    assert out.count(f"#SBATCH --array=0-{n_runs - 1}%") == len(recipes.TASKS)
    assert out.count("#SBATCH --dependency='afterok:<pretrain>'") == len(recipes.TASKS)
    assert ("#SBATCH --dependency='afterok:" + ":".join(sorted(f"<finetune-{t}>" for t in recipes.TASKS))
            + "'") in out
    assert out.count("#SBATCH --kill-on-invalid-dep=yes") == 1 + 1 + len(recipes.TASKS) + 1
    graph = out[out.index("dependency graph"):]
    for step in STEPS:
        assert f"  {step} " in graph
    assert "results-page          after " + ", ".join(f"finetune-{t}" for t in recipes.TASKS) in graph
    assert not results.exists() and not (tmp_path / "shards").exists()


def test_paper_dry_run_with_the_profiles_placeholder_paths(tmp_path, capsys):
    # the paper profile's photos (/data/faces/raw) are not here: the chain is still printed
    assert cli.main(["pipeline", "--profile", "paper", "--cluster", "v100x8", "--dry-run",
                     "--results", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "/data/faces/raw" in out and "the parts are counted at submission" in out
    assert "results-page          after finetune-recognition" in out


def _facelib(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facelib", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


BAD = [
    ([], "--cluster NAME"),
    (["--cluster", "v100x8", "--set", "pretrain.no_such_field=1"], "no field 'no_such_field'"),
    (["--cluster", "v100x8", "--set", "finetuning.epochs=1"], "unknown step 'finetuning'"),
    (["--cluster", "v100x8", "--set", "data.rows=3"], "DataSpec has no field 'rows'"),
    (["--cluster", "v100x8", "--init", "ours=/x.pth"], "besides random and ours"),
    (["--cluster", "v100x8", "--regimes", "0"], "fractions in (0, 1]"),
    (["--cluster", "nowhere"], "unknown cluster 'nowhere'"),
]


@pytest.mark.parametrize("args, needle", BAD)
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, capsys, args, needle):
    assert cli.main(["pipeline", "--profile", "paper", "--dry-run", "--results", str(tmp_path / "r"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("facelib pipeline: error: ") and needle in err, err
    assert not (tmp_path / "r").exists()


def test_bad_argument_through_the_real_command(tmp_path):
    proc = _facelib("pipeline", "--profile", "paper", "--cluster", "v100x8", "--dry-run", "--set", "pretrain.x=1")
    assert proc.returncode == 2 and "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.strip() == ("facelib pipeline: error: Pretrain has no field 'x'; valid fields: "
                                   + ", ".join(sorted(f for f in recipes.Pretrain.__dataclass_fields__)))


def test_status_names_the_failed_job_and_stops_its_dependants(tmp_path, monkeypatch):
    log = tmp_path / "5_0_0_log.err"
    log.write_text("Traceback (most recent call last):\nValueError: out/config.json is not a preprocessing config\n")
    steps = [chainmod.Step("preprocess", jobs=["5_0", "5_1"], logs={"5_0": str(log), "5_1": "x"}),
             chainmod.Step("preprocess-merge", ["preprocess"], jobs=["6"], logs={"6": "y"}),
             chainmod.Step("pretrain", ["preprocess-merge"], note="finished already"),
             chainmod.Step("finetune-au", ["pretrain"], jobs=["7_0"], logs={"7_0": "z"})]
    chainmod.record_chain(tmp_path, steps)
    states = {"5_0": "FAILED", "5_1": "COMPLETED", "6": "CANCELLED by 0", "7_0": "COMPLETED"}
    monkeypatch.setattr(chainmod, "slurm_states", lambda ids: {i: states[i] for i in ids})
    got = chainmod.chain_status(tmp_path)
    assert [s.state for s in got] == ["FAILED", "STOPPED", "SKIPPED", "COMPLETED"]
    text = chainmod.describe_chain(got)
    assert f"job 5_0 failed; log: {log}" in text and "ValueError: out/config.json" in text
    assert f"the step 'preprocess' they wait for failed (job 5_0; log: {log})" in text


# --------------------------------------------------------------------------------------------
# On the local SLURM
# --------------------------------------------------------------------------------------------
TOY = ["--profile", "demo", "--cluster", ON, "--part-size", "10", "--shard-size", "4", "--regimes", "1.0",
       "--set", "pretrain.epochs=1", "--set", "pretrain.batch_size=8", "--set", "tasks.epochs=1",
       "--set", "tasks.batch_size=8", "--set", "tasks.seeds=[0]", "--set", "data.n_train=12",
       "--set", "data.n_test=8",
       "--set", "data.size=64", "--set", "data.num_identities=4"]


@pytest.fixture
def chain_deadline(request):
    """The whole chain runs minutes on 2 shared cores: a deadline of its own (submitit waits for ever)."""
    def expired(signum, frame):
        raise TimeoutError(f"{request.node.name} passed its deadline of 900 s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(900)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _all_job_ids(results: Path, shards: Path) -> list[str]:
    ids = [r["job_id"] for r in launch.job_records(results)]
    return ids + [r["job_id"] for r in launch.job_records(shards / "array")]


@pytest.mark.slow
@pytest.mark.usefixtures("slurm_cluster", "chain_deadline")
def test_the_whole_chain_on_slurm_ends_with_the_results_page_showing_its_runs(tmp_path, capsys):
    photos, shards, results = tmp_path / "photos", tmp_path / "shards", tmp_path / "results"
    many_faces(photos, 30, seed=7)
    args = ["pipeline", *TOY, "--images", str(photos), "--shards", str(shards), "--results", str(results)]
    t0 = time.monotonic()
    try:
        rc = cli.main([*args, "--wait", "840"])
    except BaseException:
        cancel_all(_all_job_ids(results, shards))
        raise
    wall = time.monotonic() - t0
    out = capsys.readouterr().out
    assert rc == 0, out[-3000:]
    with capsys.disabled():
        print(f"\nthe whole chain on the local SLURM: {wall:.0f} s")
    steps = {s.name: s for s in chainmod.latest_chain(results)}
    assert list(steps) == STEPS
    status = {s.step.name: s.state for s in chainmod.chain_status(results)}
    assert set(status.values()) == {"COMPLETED"}, status

    # each step waited for the one before it (afterok), read from the submitted scripts
    def script(step: str) -> str:
        rec = next(r for r in launch.job_records(results) + launch.job_records(shards / "array")
                   if r["job_id"] == steps[step].jobs[0])
        base = rec["job_id"].split("_")[0]
        where = Path(rec["folder"]).parent / base if "_" in rec["job_id"] else Path(rec["folder"])
        return where / f"{base}_submission.sh"
    array_id = steps["preprocess"].jobs[0].split("_")[0]
    assert f"--dependency=afterok:{array_id}\n" in script("preprocess-merge").read_text()
    assert f"--dependency=afterok:{steps['preprocess-merge'].jobs[0]}\n" in script("pretrain").read_text()
    for t in recipes.TASKS:
        assert f"--dependency=afterok:{steps['pretrain'].jobs[0]}\n" in script(f"finetune-{t}").read_text()
    grids = sorted(steps[f"finetune-{t}"].jobs[0].split("_")[0] for t in recipes.TASKS)
    assert f"--dependency=afterok:{':'.join(grids)}\n" in script("results-page").read_text()

    # the results page (notebooks/09_results.py executed on the chain's results) shows its runs
    runs = task_grid.collect_runs(results, profile="demo")
    assert sorted(runs["run"]) == sorted(f"{t}/{i}/100pct" for t in recipes.TASKS for i in ("ours", "random"))
    page = nbformat.read(results / "pages" / "09_results.ipynb", as_version=4)
    shown = "".join(json.dumps(o) for c in page.cells if c.cell_type == "code" for o in c.get("outputs", []))
    for t in recipes.TASKS:
        assert f"{t}: 2 runs." in shown  # the page's table of every run, captioned per task
    assert "Our SwAV pretraining against random initialisation" in shown  # the summary of the grids
    assert "ours" in shown and "random" in shown
    trunk = json.loads((results / "recognition" / "ours" / "100pct" / "run.json").read_text())
    assert trunk["init"] == "ours" and (results / "swav_demo" / "trunk.pth").is_file()

    # a rerun skips every step: nothing is submitted
    n_jobs = len(_all_job_ids(results, shards))
    assert cli.main(args) == 0
    capsys.readouterr()
    assert len(_all_job_ids(results, shards)) == n_jobs
    assert all(not s.jobs for s in chainmod.latest_chain(results))


@pytest.mark.slow
@pytest.mark.usefixtures("slurm_cluster", "chain_deadline")
def test_a_failed_step_stops_its_dependants_and_is_named_with_its_log(tmp_path, capsys):
    photos, shards, results = tmp_path / "photos", tmp_path / "shards", tmp_path / "results"
    many_faces(photos, 20, seed=8)
    bad = shards / "array" / "part-00000"
    bad.mkdir(parents=True)
    (bad / "config.json").write_text("{ not json")  # element 0 of the array fails on it
    args = ["pipeline", *TOY, "--images", str(photos), "--shards", str(shards), "--results", str(results)]
    try:
        rc = cli.main([*args, "--wait", "300"])
    except BaseException:
        cancel_all(_all_job_ids(results, shards))
        raise
    out = capsys.readouterr().out
    assert rc == 1, out[-3000:]
    steps = {s.name: s for s in chainmod.latest_chain(results)}
    element = steps["preprocess"].jobs[0]
    log = steps["preprocess"].logs[element]
    assert f"job {element} failed; log: {log}" in out
    assert "is not a preprocessing config" in Path(log).read_text()
    assert f"the chain stopped: step 'preprocess' failed (job {element}; log: {log})" in out
    status = {s.step.name: s for s in chainmod.chain_status(results)}
    assert status["preprocess"].state == "FAILED"
    for name in STEPS[1:]:
        assert status[name].state == "STOPPED", (name, status[name].states)
        assert status[name].job == element and status[name].log == log
    # the same report later, from the records
    assert cli.main(["pipeline", "--status", "--results", str(results)]) == 1
    later = capsys.readouterr().out
    assert f"the step 'preprocess' they wait for failed (job {element}; log: {log})" in later
    assert not (results / "swav_demo" / "checkpoint.pth").exists()
