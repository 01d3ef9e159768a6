"""Issue 16, item 1: ``facelib preprocess SRC OUT --cluster`` as a SLURM job array.

On the local SLURM (``tests/slurm_fixtures.py``): a few dozen generated photos cut into fixed
parts, one element killed mid-way with SIGKILL and resumed by a rerun of the command (the
finished parts are not submitted again), and the merged manifest equal to a single-machine run
on the same files (rows; only shard names and indices differ) with byte-identical crops.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest

from facelib import cli, launch, storage
from facelib.faces import array
from facelib.faces import preprocess as pp

from faces_fixtures import many_faces
from slurm_fixtures import cancel_all, hard_deadline, slurm_cluster, submitit_root  # noqa: F401

N, PART = 30, 10
ON = "slurm-local"
LOCATION = ["shard", "index", "aligned_shard", "aligned_index"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> tuple[Path, Path]:
    src = tmp_path_factory.mktemp("array_src")
    many_faces(src, N, seed=5)
    ref = tmp_path_factory.mktemp("array_ref")
    pp.preprocess(src, ref, shard_size=1, progress=False)
    return src, ref


def test_split_is_fixed_by_the_sorted_list_and_the_part_size():
    assert array.split(30, 10) == [range(0, 10), range(10, 20), range(20, 30)]
    assert array.split(31, 10)[-1] == range(30, 31) and array.split(3, 10) == [range(0, 3)]
    with pytest.raises(ValueError, match="part size"):
        array.split(5, 0)


def test_debug_cluster_runs_the_parts_here_and_merges(photos, tmp_path, capsys):
    src, ref = photos
    out = tmp_path / "out"
    assert cli.main(["preprocess", str(src), str(out), "--cluster", "debug", "--part-size", "12",
                     "--shard-size", "1", "--workers", "1", "--profile", "demo"]) == 0
    printed = capsys.readouterr().out
    assert f"{N} files in 3 part(s) of 12" in printed and "merged here: 30 faces" in printed
    _assert_same_as_local(out, ref)
    assert cli.main(["preprocess", str(src), str(out), "--cluster", "debug", "--part-size", "12",
                     "--shard-size", "1", "--profile", "demo"]) == 0
    assert "3 finished, 0 queued or running, 0 to submit" in capsys.readouterr().out
    # the split never changes under a folder; a local run does not write into an array's folder
    assert cli.main(["preprocess", str(src), str(out), "--cluster", "debug", "--part-size", "7",
                     "--shard-size", "1", "--profile", "demo"]) == 2
    assert "part_size" in capsys.readouterr().err
    assert cli.main(["preprocess", str(src), str(out), "--shard-size", "1", "--no-progress"]) == 2
    assert "job array" in capsys.readouterr().err


def _assert_same_as_local(out: Path, ref: Path) -> None:
    """Same rows as the single-machine run (order-independent), byte-identical crops."""
    got = storage.read_manifest(out / pp.MANIFEST).sort_values(["file", "face"]).reset_index(drop=True)
    want = storage.read_manifest(ref / pp.MANIFEST).sort_values(["file", "face"]).reset_index(drop=True)
    assert len(got) == N
    pd.testing.assert_frame_equal(got.drop(columns=LOCATION), want.drop(columns=LOCATION))
    a, b = storage.ShardDataset(got, root=out), storage.ShardDataset(want, root=ref)
    assert all(a.read_bytes(i) == b.read_bytes(i) for i in range(len(got)))
    files = storage.read_manifest(out / pp.FILES).sort_values("file").reset_index(drop=True)
    ref_files = storage.read_manifest(ref / pp.FILES).sort_values("file").reset_index(drop=True)
    pd.testing.assert_frame_equal(files.drop(columns="seconds"), ref_files.drop(columns="seconds"))
    records = storage.read_manifest(out / pp.SHARDS)
    assert set(records["shard"]) == set(got["shard"])
    for name, size, sha1 in zip(records["shard"], records["bytes"], records["sha1"]):
        assert storage.check_file(out / name, int(size), sha1) is None


def _poll(what: str, fn, timeout_s: float, every_s: float = 0.02):
    deadline = time.monotonic() + timeout_s
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)


def _element_pids(array_id: str, k: int) -> list[int]:
    """The Python processes (submitit's ``_submit``) of array element ``<array_id>_<k>``."""
    want = {f"SLURM_ARRAY_JOB_ID={array_id}".encode(), f"SLURM_ARRAY_TASK_ID={k}".encode()}
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"submitit.core._submit" not in (proc / "cmdline").read_bytes():
                continue
            if want <= set((proc / "environ").read_bytes().split(b"\0")):
                pids.append(int(proc.name))
        except OSError:  # ended meanwhile
            continue
    return pids


def _sigkill_element(array_id: str, k: int) -> None:
    """SIGKILL the element's process: no handler runs, nothing is cleaned up (a node lost, OOM)."""
    pids = _element_pids(array_id, k)
    assert pids, f"no process of element {array_id}_{k} found"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def _committed_files(pdir: Path) -> int:
    """Files of the complete commits of a part's folder (the faces part is written last)."""
    return sum(len(pd.read_parquet(p)) for p in (pdir / "parts").glob("*.files.parquet")
               if p.with_name(p.name.replace(".files.", ".faces.")).exists())


@pytest.mark.slow
@pytest.mark.usefixtures("slurm_cluster", "hard_deadline")
def test_array_element_killed_mid_way_resumes_and_the_merge_equals_a_local_run(photos, tmp_path, capsys):
    src, ref = photos
    out = tmp_path / "out"
    cmd = ["preprocess", str(src), str(out), "--cluster", ON, "--part-size", str(PART),
           "--shard-size", "1", "--profile", "demo"]
    t0 = time.monotonic()
    assert cli.main(cmd) == 0
    printed = capsys.readouterr().out
    assert f"{N} files in 3 part(s) of {PART}; 0 finished, 0 queued or running, 3 to submit" in printed
    recs = {r["run"]: r for r in launch.job_records(out / array.ARRAY)}
    ids = [r["job_id"] for r in recs.values()]
    try:
        assert sorted(recs) == ["merge", "part-00000", "part-00001", "part-00002"]
        array_id = recs["part-00000"]["job_id"].split("_")[0]
        assert [recs[f"part-0000{k}"]["job_id"] for k in range(3)] == [f"{array_id}_{k}" for k in range(3)]
        script = Path(recs["merge"]["folder"], f"{recs['merge']['job_id']}_submission.sh").read_text()
        assert f"#SBATCH --dependency=afterok:{array_id}" in script and "--kill-on-invalid-dep=yes" in script
        # kill element 1 (SIGKILL, no chance to clean up) once it has committed some of its files
        victim = array.part_dir(out, 1)
        _poll("element 1 to commit a file", lambda: (victim / "parts").is_dir() and _committed_files(victim) > 0, 120)
        _sigkill_element(array_id, 1)
        states = lambda: launch.slurm_states(ids)  # noqa: E731
        _poll("the array and the merge job to end",
              lambda: all(states().get(i, "").split(" ")[0] in launch.TERMINAL_STATES for i in ids), 150, 0.5)
    except BaseException:
        cancel_all(ids)
        raise
    assert not (victim / array.DONE).exists(), "the kill must land before element 1 finishes"
    committed = _committed_files(victim)
    assert 0 < committed < PART
    final = launch.slurm_states(ids)
    assert final[f"{array_id}_0"] == final[f"{array_id}_2"] == "COMPLETED"
    assert final[f"{array_id}_1"] == "FAILED"
    assert final[recs["merge"]["job_id"]] == "CANCELLED"  # its dependency can never be met
    assert not (out / pp.MANIFEST).exists()

    # rerun the same command: only part 1 goes again, and resumes from its commits
    assert cli.main(cmd + ["--wait", "150"]) == 0
    printed = capsys.readouterr().out
    assert "2 finished, 0 queued or running, 1 to submit" in printed
    assert "submitted part(s) 1 as job array" in printed and "merged: 30 faces from 30 files" in printed
    seconds = time.monotonic() - t0
    done = json.loads((victim / array.DONE).read_text())
    assert done["skipped"] == committed and done["processed"] == PART - committed
    assert done["workers"] == 1  # slurm-local gives an element one CPU: one detector process
    _assert_same_as_local(out, ref)
    with capsys.disabled():
        print(f"\narray of 3 parts, one killed and resumed, merged: {seconds:.1f} s")

    # a third run submits nothing: every part is finished and merged
    n_records = len((out / array.ARRAY / launch.REGISTRY_NAME).read_text().splitlines())
    assert cli.main(cmd) == 0
    assert "3 finished, 0 queued or running, 0 to submit" in capsys.readouterr().out
    assert len((out / array.ARRAY / launch.REGISTRY_NAME).read_text().splitlines()) == n_records


@pytest.mark.slow
@pytest.mark.usefixtures("slurm_cluster", "hard_deadline")
def test_dry_run_of_the_array_submits_and_writes_nothing(photos, tmp_path, capsys):
    src, _ = photos
    out = tmp_path / "out"
    assert cli.main(["preprocess", str(src), str(out), "--cluster", ON, "--part-size", "7",
                     "--profile", "demo", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "30 files in 5 part(s) of 7" in printed and "#SBATCH --array=0-4%" in printed
    assert "#SBATCH --dependency='afterok:<the array above>'" in printed
    assert not out.exists()
