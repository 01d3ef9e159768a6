"""Bad arguments and hostile files through the real command line: one clear line, exit 2, nothing run.

Every case runs ``python -m facelib ...`` in a child process and checks the exit status, that the
error names the argument or file and the reason, and that no traceback is printed. The hostile
files are pickles that would create a marker file if they were unpickled: a checkpoint in a
pretraining run folder, one in a fine-tuning run folder, an ``--init`` file; the marker must
never appear. ``--dry-run`` without ``--cluster`` prints what would run and trains, writes and
starts nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from facelib import recipes
from pickle_fixtures import hostile_checkpoint

FAST_FT = ["--n-train", "16", "--n-test", "8", "--size", "64", "--identities", "4"]


def _facelib(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "facelib", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _error(proc: subprocess.CompletedProcess, command: str) -> str:
    """The one error line of a failed command (exit 2, no traceback)."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out, out
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(f"facelib {command}: error: ")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _manifest(tmp_path: Path, rows: int) -> tuple[Path, Path]:
    root = tmp_path / "shards"
    root.mkdir(exist_ok=True)
    path = tmp_path / f"m{rows}.parquet"
    pd.DataFrame({"shard": ["shard-00000.h5"] * rows, "index": range(rows)}).to_parquet(path)
    return path, root


# ---- pretrain: data arguments -------------------------------------------------------------
@pytest.mark.parametrize("with_root", [False, True])
def test_pretrain_missing_manifest(tmp_path, with_root):
    extra = ["--root", str(tmp_path)] if with_root else []
    line = _error(_facelib(tmp_path, "pretrain", "--manifest", "/nonexistent.parquet", *extra,
                           "--out", tmp_path / "run"), "pretrain")
    assert line.endswith("--manifest /nonexistent.parquet: no such file")
    assert not (tmp_path / "run").exists()


def test_pretrain_manifest_smaller_than_a_batch(tmp_path):
    manifest, root = _manifest(tmp_path, 3)
    line = _error(_facelib(tmp_path, "pretrain", "--manifest", manifest, "--root", root, "--out", tmp_path / "run"),
                  "pretrain")
    batch = recipes.pretrain("demo").batch_size
    assert f"--manifest {manifest}: 3 items, fewer than one batch of {batch} images (batch_size" in line
    assert not (tmp_path / "run").exists()


def test_pretrain_manifest_without_root_and_missing_root(tmp_path):
    manifest, _ = _manifest(tmp_path, 40)
    line = _error(_facelib(tmp_path, "pretrain", "--manifest", manifest, "--out", tmp_path / "run"), "pretrain")
    assert line.endswith(f"--manifest {manifest} needs --root: the folder its shard paths are relative to")
    line = _error(_facelib(tmp_path, "pretrain", "--manifest", manifest, "--root", tmp_path / "nope",
                           "--out", tmp_path / "run"), "pretrain")
    assert line.endswith(f"--root {tmp_path / 'nope'}: no such folder")


# ---- hostile and garbage checkpoints on --resume ------------------------------------------
def test_pretrain_resume_refuses_a_hostile_checkpoint(tmp_path):
    marker = tmp_path / "MARKER"
    hostile_checkpoint(tmp_path / "run" / "checkpoint.pth", marker, {"epoch": 1, "model": {}})
    line = _error(_facelib(tmp_path, "pretrain", "--out", tmp_path / "run", "--resume", "--no-progress"), "pretrain")
    assert f"{tmp_path / 'run' / 'checkpoint.pth'}: refused" in line and "(io.open)" in line
    assert "trust" not in line.lower()
    assert not marker.exists()


def test_pretrain_resume_of_a_garbage_checkpoint(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pth").write_bytes(os.urandom(5000))
    line = _error(_facelib(tmp_path, "pretrain", "--out", tmp_path / "run", "--resume", "--no-progress"), "pretrain")
    assert f"{tmp_path / 'run' / 'checkpoint.pth'}: not a readable torch checkpoint" in line
    assert "trust" not in line.lower()


def test_finetune_resume_refuses_a_hostile_checkpoint(tmp_path):
    marker = tmp_path / "MARKER"
    hostile_checkpoint(tmp_path / "run" / "checkpoint.pth", marker, {"epoch": 1, "model": {}, "optimizer": {}})
    line = _error(_facelib(tmp_path, "finetune", "au", "--run-dir", tmp_path / "run", "--resume", *FAST_FT),
                  "finetune")
    assert f"{tmp_path / 'run' / 'checkpoint.pth'}: refused" in line and "(io.open)" in line
    assert "trust" not in line.lower()
    assert not marker.exists()


def test_finetune_resume_of_a_garbage_checkpoint(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pth").write_bytes(b"PK\x03\x04 not really a zip archive")
    line = _error(_facelib(tmp_path, "finetune", "au", "--run-dir", tmp_path / "run", "--resume", *FAST_FT),
                  "finetune")
    assert "checkpoint.pth: not a readable torch checkpoint" in line


# ---- --init files -------------------------------------------------------------------------
def test_finetune_init_missing_file(tmp_path):
    line = _error(_facelib(tmp_path, "finetune", "au", "--init", "ours=/nonexistent.pth"), "finetune")
    assert line.endswith("--init ours=/nonexistent.pth: no such weights file (nothing is downloaded)")


@pytest.mark.parametrize("content", ["hostile", "random bytes"])
def test_finetune_init_refuses_hostile_or_garbage_files(tmp_path, content):
    marker = tmp_path / "MARKER"
    path = tmp_path / "trunk.pth"
    if content == "hostile":
        hostile_checkpoint(path, marker)
    else:
        path.write_bytes(os.urandom(3000))
    line = _error(_facelib(tmp_path, "finetune", "au", "--init", f"ours={path}", "--run-dir", tmp_path / "run",
                           *FAST_FT), "finetune")
    assert f"init 'ours': {path}: " in line
    assert ("refused" in line and "(io.open)" in line) if content == "hostile" else \
        "not a readable torch checkpoint" in line
    assert "trust" not in line.lower() and not marker.exists() and not (tmp_path / "run").exists()


def test_trusted_help_says_what_it_risks(tmp_path):
    for command in ("pretrain", "finetune"):
        proc = _facelib(tmp_path, command, *(["au"] if command == "finetune" else []), "--help")
        text = " ".join(proc.stdout.split())
        assert proc.returncode == 0 and "--trusted" in text
        assert "RISK: unpickling such a file runs whatever code it names" in text


# ---- dry runs ----------------------------------------------------------------------------
def test_pretrain_paper_dry_run_without_a_cluster_trains_nothing(tmp_path):
    proc = _facelib(tmp_path, "pretrain", "--profile", "paper", "--dry-run", "--out", tmp_path / "run")
    line = _error(proc, "pretrain")  # the paper profile reads shards: the run would stop
    assert "the run would stop: shard data needs --manifest" in line
    assert "nothing is trained, written or started" in proc.stdout and "paper profile" in proc.stdout
    manifest, root = _manifest(tmp_path, 4100)
    proc = _facelib(tmp_path, "pretrain", "--profile", "paper", "--dry-run", "--out", tmp_path / "run",
                    "--manifest", manifest, "--root", root)
    assert proc.returncode == 0, proc.stderr
    assert "shards: 4100 images, 4100 used, 1 batches per epoch" in proc.stdout
    assert "would be created" in proc.stdout and "none: a new run (no checkpoint)" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m4100.parquet", "shards"], "nothing written"


def test_pretrain_dry_run_shows_the_resume_state_and_refuses_a_hostile_checkpoint(tmp_path):
    from facelib import checkpoint
    checkpoint.save({"epoch": 2, "model": {"w": torch.ones(1)}}, tmp_path / "run" / "checkpoint.pth")
    proc = _facelib(tmp_path, "pretrain", "--dry-run", "--out", tmp_path / "run", "--resume")
    assert proc.returncode == 0, proc.stderr
    assert f"resume:    from {tmp_path / 'run' / 'checkpoint.pth'} (epoch 2 done)" in proc.stdout
    line = _error(_facelib(tmp_path, "pretrain", "--dry-run", "--out", tmp_path / "run"), "pretrain")
    assert "checkpoint.pth exists: pass --resume" in line
    marker = tmp_path / "MARKER"
    hostile_checkpoint(tmp_path / "run" / "checkpoint.pth", marker, {"epoch": 2})
    line = _error(_facelib(tmp_path, "pretrain", "--dry-run", "--out", tmp_path / "run", "--resume"), "pretrain")
    assert "refused" in line and not marker.exists()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.pth"]


def test_finetune_dry_run_without_a_cluster_trains_nothing(tmp_path):
    proc = _facelib(tmp_path, "finetune", "landmarks", "--dry-run", "--run-dir", tmp_path / "run", *FAST_FT)
    assert proc.returncode == 0, proc.stderr
    assert "nothing is trained, written or started" in proc.stdout
    assert "synthetic faces, 64 px: 16 training and 8 test images" in proc.stdout
    assert f"{tmp_path / 'run'}: none: a new run (no checkpoint)" in proc.stdout
    assert not any(tmp_path.iterdir())


def test_load_trunk_refuses_a_hostile_trunk_and_reads_a_safe_one(tmp_path):
    from facelib import checkpoint
    from facelib.swav import model as swav_model
    from facelib.tasks import backbone as B

    marker = tmp_path / "MARKER"
    path = hostile_checkpoint(tmp_path / "trunk.pth", marker)
    with pytest.raises(checkpoint.CheckpointError, match=r"trunk.pth: refused.*\(io.open\)"):
        swav_model.load_trunk("resnet18", path)
    with pytest.raises(B.InitError, match=r"init 'ours': .*trunk.pth: refused"):
        B.build_trunk("resnet18", "ours", path)
    assert not marker.exists()
    swav = swav_model.SwAVModel("resnet18", hidden_mlp=32, feat_dim=8, num_prototypes=4)
    swav_model.export_trunk(swav, tmp_path / "good.pth")
    assert set(torch.load(tmp_path / "good.pth", weights_only=True)) == set(swav_model.trunk_state_dict(swav))
    swav_model.load_trunk("resnet18", tmp_path / "good.pth")


# ---- launch and concurrent runs -----------------------------------------------------------
def test_an_unknown_cluster_profile_is_one_line(tmp_path):
    line = _error(_facelib(tmp_path, "pretrain", "--profile", "paper", "--cluster", "no_such_cluster",
                           "--dry-run"), "pretrain")
    assert "no_such_cluster" in line


def test_a_second_training_process_in_the_same_run_directory_is_one_line(tmp_path):
    from facelib.swav import train as swav_train

    run = tmp_path / "run"
    run.mkdir()
    held = swav_train._lock_run(run, 0)  # this test process trains there (holds the lock)
    try:
        line = _error(_facelib(tmp_path, "pretrain", "--out", run, "--set", "epochs=1"), "pretrain")
    finally:
        held.close()
    assert "another process is already training" in line and str(run) in line
