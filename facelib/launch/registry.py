"""The registry of runs: every submission is one line of ``<results>/jobs.jsonl``.

``facelib jobs status`` (:mod:`facelib.launch.runs`) reads it back and lists the runs with
their scheduler state and where their results are.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

from .allocation import Resources
from .clusters import Cluster
from .errors import LaunchError


REGISTRY_NAME = "jobs.jsonl"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _record(results_root: Path, record: dict[str, Any]) -> None:
    """Append one line to ``<results_root>/jobs.jsonl`` (a single write: lines never interleave)."""
    results_root.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(results_root / REGISTRY_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _job_record(job: Any, run: str, clus: Cluster, res: Resources, results_dir: Path,
                array: str | None = None) -> dict[str, Any]:
    return {
        "run": run, "job_id": str(job.job_id), "cluster": clus.name, "executor": clus.executor,
        "folder": str(job.paths.folder), "results": str(results_dir.absolute()),
        "submitted": _now(), "nodes": res.nodes, "tasks_per_node": res.tasks_per_node,
        "gpus_per_node": res.gpus_per_node, "name": res.name, "array": array,
    }


def job_records(results_root: str | Path = "results") -> list[dict[str, Any]]:
    """The latest record of every run in ``<results_root>/jobs.jsonl`` (submission order)."""
    path = Path(results_root) / REGISTRY_NAME
    if not path.exists():
        return []
    latest: dict[str, dict[str, Any]] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            latest[rec["run"]] = rec
        except (json.JSONDecodeError, KeyError) as exc:
            raise LaunchError(f"{path}:{n}: not a job record ({exc})") from exc
    return list(latest.values())
