"""Cluster profiles (``slurm/clusters.yaml``), selected by name and validated.

**Executors are chosen by name, never guessed.** A profile names its executor: ``debug``
(in-process, run at ``result()``), ``local`` (subprocesses on this machine) or ``slurm``.
submitit's own auto-detection picks SLURM whenever ``srun`` is on PATH, even with no
controller; we never use it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import LaunchError


EXECUTORS = ("debug", "local", "slurm")


@dataclass(frozen=True)
class Cluster:
    """One entry of ``slurm/clusters.yaml``: what a cluster offers and how to reach it."""

    name: str
    executor: str
    description: str = ""
    partition: str | None = None
    cpu_partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gpus_per_node: int = 1
    time_limit_min: int | None = None
    cpus_per_task: int | None = None
    mem_per_task_gb: int | None = None
    array_parallelism: int = 256
    setup: tuple[str, ...] = ()


_CLUSTER_TYPES: dict[str, tuple[type, ...]] = {
    "executor": (str,), "description": (str,), "partition": (str, type(None)),
    "cpu_partition": (str, type(None)),
    "account": (str, type(None)), "qos": (str, type(None)), "constraint": (str, type(None)),
    "gpus_per_node": (int,), "time_limit_min": (int, type(None)),
    "cpus_per_task": (int, type(None)), "mem_per_task_gb": (int, type(None)),
    "array_parallelism": (int,), "setup": (tuple,),
}


def clusters_file() -> Path:
    """``$FACELIB_CLUSTERS`` if set, else ``slurm/clusters.yaml`` of this checkout."""
    env = os.environ.get("FACELIB_CLUSTERS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "slurm" / "clusters.yaml"


def _make_cluster(name: str, raw: dict[str, Any], source: str) -> Cluster:
    if not isinstance(raw, dict):
        raise LaunchError(f"{source}: cluster {name!r} must be a mapping, got {type(raw).__name__}")
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _CLUSTER_TYPES:
            raise LaunchError(
                f"{source}: cluster {name!r} has unknown key {key!r}; valid keys: "
                f"{', '.join(sorted(_CLUSTER_TYPES))}"
            )
        if isinstance(value, list):
            value = tuple(str(v) for v in value)
        if not isinstance(value, _CLUSTER_TYPES[key]) or isinstance(value, bool):
            raise LaunchError(f"{source}: cluster {name!r}: {key} = {value!r} has the wrong type")
        clean[key] = value
    if "executor" not in clean:
        raise LaunchError(f"{source}: cluster {name!r} does not say its executor ({', '.join(EXECUTORS)})")
    if clean["executor"] not in EXECUTORS:
        raise LaunchError(
            f"{source}: cluster {name!r}: executor {clean['executor']!r} is not one of {', '.join(EXECUTORS)}"
        )
    for key in ("gpus_per_node", "array_parallelism"):
        if key in clean and clean[key] < 1:
            raise LaunchError(f"{source}: cluster {name!r}: {key} must be >= 1, got {clean[key]}")
    if clean.get("time_limit_min") is not None and clean["time_limit_min"] < 1:
        raise LaunchError(f"{source}: cluster {name!r}: time_limit_min must be >= 1")
    return Cluster(name=name, **clean)


def load_clusters(path: str | Path | None = None) -> dict[str, Cluster]:
    """Every cluster profile of ``path`` (default :func:`clusters_file`), validated."""
    path = Path(path) if path is not None else clusters_file()
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise LaunchError(f"cluster profiles file {path} does not exist (set FACELIB_CLUSTERS)") from exc
    except yaml.YAMLError as exc:
        raise LaunchError(f"cluster profiles file {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not raw:
        raise LaunchError(f"cluster profiles file {path} must map names to profiles")
    return {str(name): _make_cluster(str(name), body, str(path)) for name, body in raw.items()}


def cluster(name: str | Cluster, path: str | Path | None = None, **overrides: Any) -> Cluster:
    """The cluster profile ``name``, with validated ``overrides`` (e.g. ``partition="gpu"``).

    Raises:
        LaunchError: unknown name (the message lists the known ones) or a bad override.
    """
    if isinstance(name, Cluster):
        base = name
    else:
        profiles = load_clusters(path)
        if name not in profiles:
            raise LaunchError(
                f"unknown cluster {name!r}; profiles in {path or clusters_file()}: {', '.join(profiles)}"
            )
        base = profiles[name]
    if not overrides:
        return base
    raw = {k: v for k, v in dataclasses.asdict(base).items() if k != "name"}
    raw.update(overrides)
    return _make_cluster(base.name, raw, "override")
