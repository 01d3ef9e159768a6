"""Fixtures for the tests against a real local SLURM controller (``slurm/start.sh``).

``slurm_cluster`` (session): installs the packages when missing (``slurm/install.sh``, root,
apt-get), starts a private single-node cluster under a fresh short directory on free ports,
points ``SLURM_CONF`` at it and stops it afterwards by the PIDs it started (``slurm/stop.sh
--purge``), also when the start fails. ``hard_deadline``: a SIGALRM guard, because submitit
waits for ever by design. ``submitit_root``: a fresh folder per test (job ids restart at 1 on a
new cluster, and a reused folder would hand a new job an old result).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
SLURM_DIR = REPO / "slurm"
NODES = 2
NEEDED = ("munged", "slurmctld", "slurmd", "slurmdbd", "sbatch", "sacct", "mariadbd")


@dataclass(frozen=True)
class LocalCluster:
    root: Path
    conf: Path
    port: int
    nodes: int
    start_s: float


def _ports_free(base: int, n: int = 4 + NODES) -> bool:
    for p in range(base, base + n):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", p)) == 0:
                return False
    return True


def _free_base_port() -> int:
    for base in range(17817, 18800, 10):
        if _ports_free(base):
            return base
    raise RuntimeError("no 4 consecutive free ports between 17817 and 18800")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    if not all(shutil.which(b) or Path("/usr/sbin", b).exists() for b in NEEDED):
        if os.geteuid() != 0:
            pytest.skip("SLURM is not installed and installing it needs root (run slurm/install.sh)")
        subprocess.run(["bash", str(SLURM_DIR / "install.sh")], check=True, timeout=900)
    if os.geteuid() != 0:
        pytest.skip("the local SLURM cluster runs its daemons as root")
    root = Path(f"/tmp/fl-slurm-{os.getpid()}")
    port = _free_base_port()
    # Two emulated nodes (two slurmd on this machine): multi-node rank wiring is tested too.
    env = {**os.environ, "SLURM_LOCAL_ROOT": str(root), "SLURM_LOCAL_PORT": str(port),
           "SLURM_LOCAL_NODES": str(NODES)}
    t0 = time.monotonic()
    proc = subprocess.run(["bash", str(SLURM_DIR / "start.sh")], env=env, capture_output=True,
                          text=True, timeout=300)
    start_s = time.monotonic() - t0
    if proc.returncode != 0:
        subprocess.run(["bash", str(SLURM_DIR / "stop.sh"), "--purge"], env=env, timeout=120)
        raise RuntimeError(f"slurm/start.sh failed:\n{proc.stdout}\n{proc.stderr}")
    print(f"\nlocal SLURM cluster up in {start_s:.1f} s ({proc.stderr.strip().splitlines()[-1]})")
    conf = root / "etc" / "slurm.conf"
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    try:
        yield LocalCluster(root=root, conf=conf, port=port, nodes=NODES, start_s=start_s)
    finally:
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
        subprocess.run(["bash", str(SLURM_DIR / "stop.sh")], env=env, timeout=120)
        # Keep the daemons' logs where pytest keeps its temporary files, then purge.
        if (root / "log").is_dir():
            shutil.copytree(root / "log", tmp_path_factory.mktemp("slurm-logs"), dirs_exist_ok=True)
        subprocess.run(["bash", str(SLURM_DIR / "stop.sh"), "--purge"], env=env, timeout=120)


HARD_DEADLINE_S = 180


@pytest.fixture
def hard_deadline(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test (TimeoutError) when it runs longer than ``HARD_DEADLINE_S``."""
    seconds = HARD_DEADLINE_S

    def _expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"{request.node.name} passed its hard deadline of {seconds} s")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def submitit_root(tmp_path: Path) -> Path:
    """A fresh results root for one test (its submitit folders live under it)."""
    root = tmp_path / "results"
    root.mkdir()
    return root


def cancel_all(job_ids: list[str]) -> None:
    """Best-effort ``scancel`` of the jobs of a failed test (never of a passing one: a job whose
    result is written may still be completing, and would end CANCELLED)."""
    if job_ids and shutil.which("scancel"):
        subprocess.run(["scancel", *job_ids], capture_output=True, timeout=30)
