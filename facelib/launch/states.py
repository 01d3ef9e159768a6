"""Scheduler states of recorded jobs: SLURM's (``squeue``, ``sacct``) or a local job's files.

A local job's state comes from the first element (``"success"`` / ``"error"``) of submitit's
result pickle in the run folder, read by :func:`result_outcome` without running anything the
pickle names: run folders are shared and copied, and unpickling a crafted file runs its code.
"""

from __future__ import annotations

import pickle
import shutil
import subprocess
from pathlib import Path
from typing import Any, Sequence


# sacct states after which a job will not run again.
TERMINAL_STATES = {
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
    "PREEMPTED", "TIMEOUT", "REVOKED",
}


# States in which a job will still run (or is running): do not submit its run again.
ACTIVE_STATES = {
    "PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "COMPLETING",
    "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD",
}


def _expand_array_ids(job_id: str) -> list[str]:
    """``123_[0-3,7%2]`` (a pending array in sacct/squeue) -> ``123_0 .. 123_3, 123_7``."""
    if "_[" not in job_id:
        return [job_id]
    base, spec = job_id.split("_[", 1)
    spec = spec.rstrip("]").split("%")[0]
    ids = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        ids += [f"{base}_{k}" for k in range(int(lo), int(hi or lo) + 1)]
    return ids


def slurm_states(job_ids: Sequence[str]) -> dict[str, str]:
    """Scheduler state of each job id (``"COMPLETED"``, ``"RUNNING"``, ``"CANCELLED"``...).

    The controller first (``squeue -t all``: queued, running and jobs that ended in the last
    ``MinJobAge``, 300 s by default), then accounting (``sacct``) for the older ones: right
    after a job ends, slurmdbd can lag the controller by seconds. Ids neither knows are left
    out; array elements are looked up as ``<id>_<i>``.
    """
    if not job_ids:
        return {}
    states: dict[str, str] = {}

    def ask(cmd: list[str]) -> bool:
        if shutil.which(cmd[0]) is None:
            return True
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        for line in proc.stdout.splitlines():  # also on rc 1 (some ids unknown): keep the rest
            if "|" not in line:
                continue
            jid, state = line.split("|", 1)
            for one in _expand_array_ids(jid.strip()):
                states.setdefault(one, state.split()[0] if state.strip() else "UNKNOWN")
        return proc.returncode == 0

    squeue = ["squeue", "-h", "-t", "all", "-o", "%i|%T", "-j"]
    if not ask(squeue + [",".join(job_ids)]):  # an unknown id fails the whole call: one by one
        for jid in job_ids:
            ask(squeue + [jid])
    missing = [j for j in job_ids if j not in states]
    if missing:
        ask(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(missing)])
    return states


class _Inert:
    """Stands for every class and function a result pickle names: takes anything, does nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass


class _InertUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return _Inert  # nothing named by the file is imported or called


def result_outcome(path: str | Path) -> str | None:
    """The outcome (``"success"``, ``"error"`` ...) a submitit result pickle records, or None when
    it cannot be read; nothing in the file is run (every object it names is an inert stand-in)."""
    try:
        with open(path, "rb") as fh:
            obj = _InertUnpickler(fh).load()
    except Exception:
        return None
    outcome = obj[0] if isinstance(obj, tuple) and obj else None
    return outcome if isinstance(outcome, str) else None


def _local_state(rec: dict[str, Any]) -> str:
    pickle_path = Path(rec["folder"]) / f"{rec['job_id']}_0_result.pkl"
    if pickle_path.exists():
        outcome = result_outcome(pickle_path)
        if outcome is None:  # unreadable pickle: the job ended, its outcome is unknown
            return "ENDED"
        return "COMPLETED" if outcome == "success" else "FAILED"
    if rec["executor"] == "debug":
        return "NOT_RUN (debug runs at result())"
    try:
        pid = int(rec["job_id"])
        stat = Path(f"/proc/{pid}/stat").read_text()
        return "RUNNING" if stat.rsplit(")", 1)[1].split()[0] != "Z" else "ENDED"
    except (ValueError, OSError):
        return "ENDED"
