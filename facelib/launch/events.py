"""The event log of a run directory (``events.jsonl``): starts, checkpoints, ends, failures."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from .registry import _now


def _job_context() -> dict[str, Any]:
    env = os.environ
    return {
        "job_id": env.get("SLURM_JOB_ID") or env.get("SUBMITIT_LOCAL_JOB_ID") or env.get("SUBMITIT_DEBUG_JOB_ID"),
        "restart": int(env.get("SLURM_RESTART_COUNT", "0") or 0),
        "rank": int(env.get("SLURM_PROCID", env.get("SUBMITIT_LOCAL_GLOBALID", "0")) or 0),
        "array": (f"{env['SLURM_ARRAY_JOB_ID']}_{env.get('SLURM_ARRAY_TASK_ID')}"
                  if env.get("SLURM_ARRAY_JOB_ID") else None),
        "gpus": env.get("CUDA_VISIBLE_DEVICES"),
        "host": socket.gethostname(), "pid": os.getpid(), "time": _now(),
    }


def record_event(run_dir: str | Path, event: str, **info: Any) -> None:
    """Append ``event`` (with job id, requeue count, rank, host, time) to ``run_dir/events.jsonl``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"event": event, **_job_context(), **info}, sort_keys=True) + "\n"
    fd = os.open(run_dir / "events.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_events(run_dir: str | Path) -> list[dict[str, Any]]:
    """The events of a run directory, oldest first (``[]`` if none)."""
    path = Path(run_dir) / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
