"""Launching jobs through submitit: executors by cluster profile, resources from the recipes.

* **Executors are chosen by name, never guessed.** A cluster profile of ``slurm/clusters.yaml``
  names its executor: ``debug`` (in-process, run at ``result()``), ``local`` (subprocesses on
  this machine) or ``slurm``. submitit's own auto-detection picks SLURM whenever ``srun`` is on
  PATH, even with no controller; we never use it.
* **Resources come from the recipes.** Pretraining asks ``Pretrain.num_gpus`` GPUs (64 in the
  paper: 8 nodes x 8 GPUs, 64 images per GPU for the global batch of 4096, supplement 1.1).
  A fine-tuning run asks ``Launch.finetune_gpus_per_run`` = 1 GPU and takes its recipe's whole
  batch there: the loop is one process with exact resume, and every paper recipe fits one
  16 GB GPU (measured peaks in that field's note); the supplement's per-task GPU counts
  (``num_gpus`` of each task recipe: 8 for recognition) are kept as printed and shown by the
  dry run. One task per GPU; CPUs and memory per task, time wanted and the requeue policy are
  ``recipes.Launch``; partitions, GPUs per node and time limits are the cluster profile's.
* **The fine-tuning grid is one job array per task** (:func:`submit_grid`): a point whose
  ``metrics.json`` exists or whose job is still queued or running is not submitted again, so
  rerunning a page or a command submits only what is missing; :func:`plan_grid` is its dry run.
* **Jobs resume.** A :class:`ResumableJob` keeps its progress in its run directory; its
  ``checkpoint()`` returns a ``DelayedSubmission`` of itself, so a time limit (USR2
  ``signal_delay_s`` before it) or a pre-emption requeues it and the next run continues.
* **Nothing waits forever.** :func:`wait` has a deadline and reports a job that ended without a
  result (cancelled, killed, out of memory) instead of polling it for ever.
* **Every submission is recorded** in ``<results>/jobs.jsonl``; ``facelib jobs status`` lists
  the runs with their scheduler state and where their results are.

Page: notebooks/03_swav_pretraining.py and the fine-tuning pages submit through here.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import pickle
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import yaml

from facelib import recipes

__all__ = [
    "LaunchError",
    "JobTimeout",
    "JobEndedWithoutResult",
    "Cluster",
    "Resources",
    "Plan",
    "clusters_file",
    "load_clusters",
    "cluster",
    "resources",
    "make_executor",
    "plan",
    "submit",
    "submit_array",
    "wait",
    "interrupt",
    "ResumableJob",
    "CountingJob",
    "ProbeJob",
    "GridPoint",
    "finetune_grid",
    "GridPlan",
    "plan_grid",
    "submit_grid",
    "read_events",
    "job_records",
    "status",
    "RunStatus",
    "submit_once",
    "active_runs",
    "settled_runs",
    "add_cluster_arguments",
    "launch_from_args",
    "submit_from_cli",
    "add_cli",
]

EXECUTORS = ("debug", "local", "slurm")
REGISTRY_NAME = "jobs.jsonl"
# sacct states after which a job will not run again.
TERMINAL_STATES = {
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
    "PREEMPTED", "TIMEOUT", "REVOKED",
}


class LaunchError(ValueError):
    """A cluster profile, resource request or submission is invalid (the message says why)."""


class JobTimeout(TimeoutError):
    """A job did not finish before the caller's deadline."""


class JobEndedWithoutResult(RuntimeError):
    """The scheduler reports the job over, but it wrote no result (cancelled, killed, OOM...)."""


# ---------------------------------------------------------------------------------------------
# Cluster profiles (slurm/clusters.yaml)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cluster:
    """One entry of ``slurm/clusters.yaml``: what a cluster offers and how to reach it."""

    name: str
    executor: str
    description: str = ""
    partition: str | None = None
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
    return Path(__file__).resolve().parents[1] / "slurm" / "clusters.yaml"


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


# ---------------------------------------------------------------------------------------------
# Resources derived from the recipes
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Resources:
    """What one job asks for. One task per GPU (or one task per CPU worker on a CPU job).

    Attributes:
        name: job name shown by the scheduler.
        nodes, tasks_per_node, gpus_per_node: layout; ``nodes * tasks_per_node`` tasks.
        cpus_per_task: CPU cores per task (data-loading workers).
        mem_gb: memory per node in GB; 0 asks nothing.
        timeout_min: time limit of one run of the job (it is requeued after it).
        signal_delay_s: USR2 this long before the limit (time to checkpoint).
        max_num_timeout: requeues allowed after time limits.
        images_per_gpu: per-GPU batch (global batch / GPUs), for the record; None if not a batch job.
        global_batch: the recipe's batch size.
        paper_gpus: the GPUs the supplement used for this job when they differ from ours
            (fine-tuning runs take the whole batch on one GPU), for the record; else None.
    """

    name: str
    nodes: int
    tasks_per_node: int
    gpus_per_node: int
    cpus_per_task: int
    mem_gb: int
    timeout_min: int
    signal_delay_s: int
    max_num_timeout: int
    images_per_gpu: int | None = None
    global_batch: int | None = None
    paper_gpus: int | None = None

    @property
    def num_tasks(self) -> int:
        return self.nodes * self.tasks_per_node

    @property
    def num_gpus(self) -> int:
        return self.nodes * self.gpus_per_node


def _layout(num_gpus: int, gpus_per_node: int, where: str) -> tuple[int, int]:
    """(nodes, GPUs per node) for ``num_gpus`` on nodes of ``gpus_per_node``: whole nodes only."""
    if num_gpus < 1:
        raise LaunchError(f"{where}: num_gpus must be >= 1, got {num_gpus}")
    if num_gpus <= gpus_per_node:
        return 1, num_gpus
    if num_gpus % gpus_per_node:
        raise LaunchError(
            f"{where}: {num_gpus} GPUs do not fill whole nodes of {gpus_per_node} GPUs; "
            "change the recipe's num_gpus or the cluster's gpus_per_node"
        )
    return num_gpus // gpus_per_node, gpus_per_node


def resources(kind: str, profile: str = "paper", on: str | Cluster = "debug",
              name: str | None = None, recipe: Any = None, **launch_overrides: Any) -> Resources:
    """The resources of a ``kind`` job (``"pretrain"`` or a task of ``recipes.TASKS``).

    Args:
        kind: ``"pretrain"`` or a downstream task name.
        profile: recipe profile (``"demo"`` or ``"paper"``).
        on: cluster profile name or :class:`Cluster`.
        name: job name (default ``facelib-<kind>``).
        recipe: the job's own recipe (with overrides) instead of the profile's.
        **launch_overrides: fields of :class:`facelib.recipes.Launch` to override.

    Returns:
        :class:`Resources`; e.g. paper pretraining on an 8-GPU cluster gives 8 nodes x 8 tasks,
        8 GPUs per node and 64 images per GPU; a fine-tuning run gets one GPU with its recipe's
        whole batch (``paper_gpus`` records the supplement's count when it is not one).

    Raises:
        LaunchError: unknown kind, the GPUs cannot be laid out on the cluster's nodes, or a
            fine-tuning run asked for more than one GPU.
    """
    clus = cluster(on)
    launch_recipe = recipes.launch(profile, **launch_overrides)
    paper_gpus = None
    if kind == "pretrain":
        rec = recipe if recipe is not None else recipes.pretrain(profile)
        num_gpus, batch, timeout = rec.num_gpus, rec.batch_size, launch_recipe.pretrain_timeout_min
    elif kind in recipes.TASKS:
        rec = recipe if recipe is not None else recipes.task(kind, profile)
        num_gpus, batch, timeout = (launch_recipe.finetune_gpus_per_run, rec.batch_size,
                                    launch_recipe.finetune_timeout_min)
        if num_gpus != 1:
            raise LaunchError(
                f"{kind} ({profile}): finetune_gpus_per_run = {num_gpus}, but a fine-tuning run is one "
                "process on one GPU (facelib.tasks.finetune.FinetuneJob); keep it at 1"
            )
        paper_gpus = rec.num_gpus if rec.num_gpus != num_gpus else None
    else:
        raise LaunchError(f"unknown job kind {kind!r}; choose pretrain or one of {', '.join(recipes.TASKS)}")
    where = f"{kind} ({profile}) on cluster {clus.name!r}"
    nodes, gpn = _layout(num_gpus, clus.gpus_per_node, where)
    if batch % num_gpus:
        raise LaunchError(f"{where}: batch {batch} does not split evenly over {num_gpus} GPUs")
    if clus.executor != "slurm" and nodes > 1:
        raise LaunchError(f"{where}: executor {clus.executor!r} runs on one node; {nodes} nodes needed")
    cpus = clus.cpus_per_task if clus.cpus_per_task is not None else launch_recipe.cpus_per_task
    mem_task = clus.mem_per_task_gb if clus.mem_per_task_gb is not None else launch_recipe.mem_per_task_gb
    if clus.time_limit_min is not None:
        timeout = min(timeout, clus.time_limit_min)
    return Resources(
        name=name or f"facelib-{kind}", nodes=nodes, tasks_per_node=gpn, gpus_per_node=gpn,
        cpus_per_task=cpus, mem_gb=mem_task * gpn, timeout_min=timeout,
        signal_delay_s=launch_recipe.signal_delay_s, max_num_timeout=launch_recipe.max_num_timeout,
        images_per_gpu=batch // num_gpus, global_batch=batch, paper_gpus=paper_gpus,
    )


def cpu_resources(name: str, tasks: int = 1, timeout_min: int = 15, cpus_per_task: int = 1,
                  signal_delay_s: int = 30, max_num_timeout: int = 3) -> Resources:
    """Resources of a CPU-only job of ``tasks`` tasks on one node (probes, small utilities)."""
    if tasks < 1:
        raise LaunchError(f"tasks must be >= 1, got {tasks}")
    return Resources(name=name, nodes=1, tasks_per_node=tasks, gpus_per_node=0,
                     cpus_per_task=cpus_per_task, mem_gb=0, timeout_min=timeout_min,
                     signal_delay_s=signal_delay_s, max_num_timeout=max_num_timeout)


def _slurm_parameters(res: Resources, clus: Cluster) -> dict[str, Any]:
    """The exact ``SlurmExecutor.update_parameters`` arguments for ``res`` on ``clus``."""
    params: dict[str, Any] = {
        "job_name": res.name,
        "nodes": res.nodes,
        "ntasks_per_node": res.tasks_per_node,
        "cpus_per_task": res.cpus_per_task,
        "time": res.timeout_min,
        "signal_delay_s": res.signal_delay_s,
        "array_parallelism": clus.array_parallelism,
        # A task that dies (an exception, a failed rendezvous) ends its job instead of leaving
        # the other tasks waiting on a collective until the time limit.
        "srun_args": ["--kill-on-bad-exit=1"],
    }
    if res.gpus_per_node:
        params["gpus_per_node"] = res.gpus_per_node
    if res.mem_gb:
        params["mem"] = f"{res.mem_gb}GB"
    for key in ("partition", "account", "qos", "constraint"):
        value = getattr(clus, key)
        if value is not None:
            params[key] = value
    if clus.setup:
        params["setup"] = list(clus.setup)
    return params


def make_executor(on: str | Cluster, folder: str | Path, res: Resources) -> Any:
    """The submitit executor of cluster ``on``, configured for ``res``.

    The executor class is the one the profile names (never auto-detected).

    Raises:
        LaunchError: a slurm profile while ``sbatch`` is not on PATH.
    """
    import submitit

    clus = cluster(on)
    folder = Path(folder)
    if clus.executor == "debug":
        return submitit.DebugExecutor(folder=folder)
    if clus.executor == "local":
        ex = submitit.LocalExecutor(folder=folder, max_num_timeout=res.max_num_timeout)
        ex.update_parameters(timeout_min=res.timeout_min, nodes=1, tasks_per_node=res.tasks_per_node,
                             gpus_per_node=res.gpus_per_node, signal_delay_s=res.signal_delay_s)
        return ex
    if shutil.which("sbatch") is None:
        raise LaunchError(f"cluster {clus.name!r} uses slurm, but sbatch is not on PATH")
    ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=res.max_num_timeout)
    ex.update_parameters(**_slurm_parameters(res, clus))
    return ex


# ---------------------------------------------------------------------------------------------
# Dry runs
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """What a submission would do, without doing it."""

    kind: str
    profile: str
    cluster: Cluster
    resources: Resources
    parameters: dict[str, Any]
    script: str
    array: int | None = None

    def summary(self) -> str:
        r = self.resources
        lines = [
            f"{self.kind} ({self.profile} profile) on cluster {self.cluster.name!r} "
            f"[{self.cluster.executor} executor]",
            f"  {r.nodes} node(s) x {r.gpus_per_node} GPU(s) = {r.num_gpus} GPUs, "
            f"{r.tasks_per_node} task(s) per node, {r.cpus_per_task} CPU(s) per task"
            + (f", {r.mem_gb} GB per node" if r.mem_gb else ""),
        ]
        if r.images_per_gpu is not None:
            lines.append(f"  {r.images_per_gpu} images per GPU (global batch {r.global_batch})")
        if r.paper_gpus is not None:
            lines.append(f"  the supplement used {r.paper_gpus} GPUs ({r.global_batch // r.paper_gpus} "
                         f"images each); one run here takes the whole batch on {r.num_gpus} GPU "
                         "(recipes.Launch.finetune_gpus_per_run)")
        if self.array and self.array > 1:
            lines.append(f"  job array of {self.array} runs (one element per run, at most "
                         f"{min(self.array, self.cluster.array_parallelism)} at once)")
        lines.append(
            f"  time limit {r.timeout_min} min, USR2 {r.signal_delay_s} s before it, "
            f"up to {r.max_num_timeout} requeues after time limits"
        )
        lines.append("  parameters: " + json.dumps(self.parameters, sort_keys=True))
        if self.script:
            lines += ["", self.script]
        return "\n".join(lines)


def plan(kind: str, profile: str, on: str | Cluster, folder: str | Path = "results/<run>/submitit/%j",
         res: Resources | None = None, array: int | None = None) -> Plan:
    """The sbatch script (slurm) or executor parameters a ``kind`` job would be submitted with.

    Nothing is submitted and nothing is written: the script is made by the same submitit code
    that writes it at submission (``SlurmExecutor._make_submission_file_text``; for a job array
    of ``array`` elements, with the ``--array`` line ``executor.batch()`` adds).
    """
    if array is not None and array < 1:
        raise LaunchError(f"a job array needs at least one element, got {array}")
    import submitit

    clus = cluster(on)
    res = res or resources(kind, profile, clus)
    if clus.executor == "slurm":
        params = _slurm_parameters(res, clus)
        # SlurmExecutor.__init__ refuses to run without srun on PATH; a dry run must work on a
        # laptop, so build the executor state by hand (submitit is pinned to 1.5.x).
        ex = submitit.SlurmExecutor.__new__(submitit.SlurmExecutor)
        ex.folder = Path(folder).absolute() if not str(folder).startswith("<") else Path(folder)
        ex.parameters = {}
        ex.max_num_timeout = res.max_num_timeout
        ex.python = shlex.quote(sys.executable)
        ex._delayed_batch = None
        ex.update_parameters(**params)
        if array is not None and array > 1:  # what SlurmExecutor._internal_process_submissions sets
            ex.parameters["map_count"] = array
        script = ex._make_submission_file_text(ex._submitit_command_str, "dry-run")
    else:
        params = {"timeout_min": res.timeout_min, "tasks_per_node": res.tasks_per_node,
                  "gpus_per_node": res.gpus_per_node, "signal_delay_s": res.signal_delay_s}
        script = ""
    return Plan(kind=kind, profile=profile, cluster=clus, resources=res, parameters=params, script=script,
                array=array)


# ---------------------------------------------------------------------------------------------
# Submission, the registry of runs, waiting with a deadline
# ---------------------------------------------------------------------------------------------
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


def submit(fn: Callable[..., Any], *args: Any, run: str, on: str | Cluster, res: Resources,
           results_root: str | Path = "results", folder: str | Path | None = None,
           results_dir: str | Path | None = None) -> Any:
    """Submit ``fn(*args)`` as run ``run`` and record it in ``<results_root>/jobs.jsonl``.

    Args:
        fn: a picklable callable (a :class:`ResumableJob` to survive requeues).
        run: the run's name; its results go to ``<results_root>/<run>/``.
        on: cluster profile.
        res: resources (see :func:`resources`).
        results_root: where run directories and the registry live.
        folder: submitit folder (logs, pickles); default ``<results_root>/<run>/submitit/%j``.
        results_dir: where the job writes its results, if not ``<results_root>/<run>``.

    Returns:
        The submitit job (``job.job_id``, ``job.paths.stdout``...).
    """
    clus = cluster(on)
    root = Path(results_root)
    run_dir = Path(results_dir) if results_dir is not None else root / run
    folder = Path(folder) if folder is not None else run_dir / "submitit" / "%j"
    ex = make_executor(clus, folder, res)
    job = ex.submit(fn, *args)
    _record(root, _job_record(job, run, clus, res, run_dir))
    return job


def submit_array(fns: Sequence[Callable[[], Any]], runs: Sequence[str], *, on: str | Cluster,
                 res: Resources, results_root: str | Path = "results", name: str = "array",
                 folder: str | Path | None = None) -> list[Any]:
    """Submit ``fns`` as one job array (``executor.batch()``): element ``i`` is run ``runs[i]``.

    All elements share ``res``; on SLURM they form one array (``<id>_<i>``) of which at most the
    cluster's ``array_parallelism`` run at once.
    """
    if len(fns) != len(runs):
        raise LaunchError(f"{len(fns)} jobs but {len(runs)} run names")
    if len(set(runs)) != len(runs):
        raise LaunchError("run names of an array must be unique")
    if not fns:
        return []
    clus = cluster(on)
    root = Path(results_root)
    folder = Path(folder) if folder is not None else root / "_arrays" / name / "%j"
    ex = make_executor(clus, folder, res)
    with ex.batch():
        jobs = [ex.submit(fn) for fn in fns]
    for job, run in zip(jobs, runs):
        _record(root, _job_record(job, run, clus, res, root / run, array=name))
    return jobs


def _tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return f"(no {path.name})"


def _has_result(job: Any) -> bool:
    return Path(job.paths.result_pickle).exists()


def _failed_task(job: Any) -> Any:
    """The first task of a multi-task job whose result pickle records an exception, or None."""
    if job.num_tasks <= 1:
        return None
    for k in range(job.num_tasks):
        task = job.task(k)
        path = Path(task.paths.result_pickle)
        if path.exists():
            try:
                with path.open("rb") as fh:
                    if pickle.load(fh)[0] == "error":
                        return task
            except (EOFError, pickle.UnpicklingError):  # being written
                continue
    return None


def _run_debug(job: Any) -> Any:
    """Run a debug job now, in this process, under its submission-time environment.

    ``DebugJob.result()`` itself opens ``pdb.post_mortem()`` when the job raises, which would
    hang a notebook or a test waiting on stdin; here the exception simply propagates.
    """
    job._check_not_cancelled()
    submission = job._submission
    if submission.done():
        return submission._result
    backup = dict(os.environ)
    os.environ.clear()
    os.environ.update(job.environ)
    try:
        return submission.result()
    finally:
        os.environ.clear()
        os.environ.update(backup)


def wait(job: Any, timeout_s: float, poll_s: float = 1.0) -> Any:
    """Wait at most ``timeout_s`` for ``job`` and return its result (a list for multi-task jobs).

    Raises:
        JobTimeout: not finished in time; the message gives the state and the log path.
        JobEndedWithoutResult: the scheduler says it ended (cancelled, killed, out of memory,
            time limit without a checkpoint) and it wrote no result.
        submitit.core.utils.FailedJobError: the job raised; the message holds its traceback.
    """
    from submitit.local.debug import DebugJob

    if isinstance(job, DebugJob):
        return _run_debug(job)
    from submitit.slurm.slurm import SlurmJob

    is_slurm = isinstance(job, SlurmJob)
    deadline = time.monotonic() + timeout_s
    state = ""
    while True:
        if job.done(force_check=True):
            break
        if is_slurm:
            # Ask sacct and, while accounting lags, the controller itself (squeue -t all).
            state = slurm_states([str(job.job_id)]).get(str(job.job_id), "")
            if state.split(" ")[0] in TERMINAL_STATES:
                break
        failed = _failed_task(job)
        if failed is not None:  # one task raised: its traceback now, not at the time limit
            job.cancel(check=False)
            failed.result()
        if time.monotonic() > deadline:
            raise JobTimeout(
                f"job {job.job_id} not finished after {timeout_s:.0f} s (state {job.state}); "
                f"log: {job.paths.stderr}"
            )
        time.sleep(poll_s)
    if not _has_result(job):
        # The pickle is written before the step exits; allow a shared filesystem a moment.
        grace = time.monotonic() + min(5.0, max(deadline - time.monotonic(), 0.0))
        while not _has_result(job) and time.monotonic() < grace:
            time.sleep(0.2)
    if not _has_result(job):
        raise JobEndedWithoutResult(
            f"job {job.job_id} ended in state {state or job.state} without a result; "
            f"stderr ({job.paths.stderr}):\n{_tail(Path(job.paths.stderr))}"
        )
    job._results_timeout_s = max(min(15.0, deadline - time.monotonic()), 1.0)
    return job.results() if job.num_tasks > 1 else job.result()


def interrupt(job: Any) -> None:
    """Send USR2 to a running SLURM job, as SLURM does ``signal_delay_s`` before a time limit.

    The job's submitit handler calls ``checkpoint()``, requeues the job and exits; the requeued
    job resumes from its run directory. Only USR2 is sent: submitit's own ``_interrupt()`` sends
    SIGTERM too, and when TERM arrives second it kills the ``scontrol requeue`` of the handler.
    """
    subprocess.run(["scancel", "--signal=USR2", str(job.job_id)], check=True,
                   capture_output=True, text=True)


# ---------------------------------------------------------------------------------------------
# Jobs
# ---------------------------------------------------------------------------------------------
def _atomic_write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, sort_keys=True))
    os.replace(tmp, path)


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


class ResumableJob:
    """A picklable job that keeps its progress in ``run_dir`` and requeues itself.

    Subclasses implement :meth:`run`, which must continue from what ``run_dir`` holds. When
    SLURM signals a time limit or a pre-emption (USR2), submitit calls :meth:`checkpoint`,
    which returns a ``DelayedSubmission`` of this same job: the requeued job calls ``run`` again
    and picks up the last checkpoint written there. Starts, checkpoints, ends and failures are
    appended to ``run_dir/events.jsonl``.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = str(Path(run_dir).absolute())

    def __call__(self) -> Any:
        run_dir = Path(self.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        record_event(run_dir, "start")
        try:
            out = self.run()
        except Exception as exc:
            record_event(run_dir, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        record_event(run_dir, "done")
        return out

    def run(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit on USR2: the state is on disk already, requeue this same job."""
        from submitit.helpers import DelayedSubmission

        record_event(self.run_dir, "checkpoint")
        return DelayedSubmission(self, *args, **kwargs)


class CheckpointError(RuntimeError):
    """A run directory's checkpoint cannot be read."""


def _mix(value: int, step: int) -> int:
    """One step of a 64-bit linear congruential generator fed with the step number."""
    return (value * 6364136223846793005 + 1442695040888963407 + step) % 2**64


class CountingJob(ResumableJob):
    """Counts ``n_steps`` steps, checkpointing after each one, and returns the final state.

    Each step waits ``step_s`` seconds and mixes the step number into a 64-bit value, so the
    result depends on every step having run exactly once, in order: a run that is interrupted,
    requeued and resumed returns the same value as one that was not. The smallest real use of
    :class:`ResumableJob`, and what the requeue tests submit.
    """

    def __init__(self, run_dir: str | Path, n_steps: int, step_s: float = 0.0, seed: int = 0) -> None:
        super().__init__(run_dir)
        if n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps}")
        if step_s < 0:
            raise ValueError(f"step_s must be >= 0, got {step_s}")
        self.n_steps, self.step_s, self.seed = n_steps, step_s, seed

    @property
    def state_path(self) -> Path:
        return Path(self.run_dir) / "state.json"

    def _load_state(self) -> dict[str, int]:
        path = self.state_path
        if not path.exists():
            return {"step": 0, "value": self.seed}
        try:
            state = json.loads(path.read_text())
            step, value = int(state["step"]), int(state["value"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{path}: corrupt checkpoint ({type(exc).__name__}: {exc})") from exc
        if not 0 <= step <= self.n_steps:
            raise CheckpointError(f"{path}: step {step} is outside 0..{self.n_steps}")
        return {"step": step, "value": value}

    def run(self) -> dict[str, int]:
        state = self._load_state()
        record_event(self.run_dir, "resume" if state["step"] else "begin", step=state["step"])
        value = state["value"]
        for step in range(state["step"], self.n_steps):
            if self.step_s:
                time.sleep(self.step_s)
            value = _mix(value, step)
            _atomic_write_json(self.state_path, {"step": step + 1, "value": value})
        return {"steps": self.n_steps, "value": value}


class ProbeJob:
    """Check a job's distributed wiring: init torch.distributed, all-reduce, report.

    Every task initialises the process group from its environment (:mod:`facelib.dist`),
    all-reduces ``rank + 1`` and all-gathers where each task runs. Rank 0 writes the report to
    ``<run_dir>/probe.json``. Run it before a long multi-node job: a wrong rank, world size or
    master address shows up here in seconds (``facelib jobs probe``).
    """

    def __init__(self, run_dir: str | Path | None = None, backend: str | None = None,
                 timeout_s: float = 120.0) -> None:
        self.run_dir = str(Path(run_dir).absolute()) if run_dir is not None else None
        self.backend, self.timeout_s = backend, timeout_s

    def __call__(self) -> dict[str, Any]:
        import torch
        import torch.distributed as torch_dist

        from facelib import dist

        env = dist.init_distributed(self.backend, timeout_s=self.timeout_s)
        try:
            backend = torch_dist.get_backend()
            device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
            t = torch.tensor([float(env.rank + 1)], device=device)
            torch_dist.all_reduce(t)
            me = {**dist.describe(env), "host": socket.gethostname(),
                  "node_name": os.environ.get("SLURMD_NODENAME"),
                  "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                  "array_task_id": os.environ.get("SLURM_ARRAY_TASK_ID")}
            everyone: list[Any] = [None] * env.world_size
            torch_dist.all_gather_object(everyone, me)
        finally:
            dist.destroy()
        report = {**me, "backend": backend, "sum": float(t.item()),
                  "expected": env.world_size * (env.world_size + 1) / 2, "tasks": everyone}
        if self.run_dir is not None and env.rank == 0:
            Path(self.run_dir).mkdir(parents=True, exist_ok=True)
            _atomic_write_json(Path(self.run_dir) / "probe.json", report)
        return report


# ---------------------------------------------------------------------------------------------
# The fine-tuning grid as job arrays
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GridPoint:
    """One fine-tuning run: a task, a data regime (fraction of the labels) and an initialisation."""

    task: str
    regime: float
    init: str

    @property
    def run(self) -> str:
        """Run name, e.g. ``landmarks/swav-vggface2/2pct``; results go to ``results/<run>/``."""
        pct = self.regime * 100
        pct_s = f"{pct:g}".replace(".", "p")
        return f"{self.task}/{self.init}/{pct_s}pct"


def finetune_grid(inits: Sequence[str], tasks: Sequence[str] | None = None,
                  regimes: Sequence[float] | None = None) -> list[GridPoint]:
    """Every (task, regime, initialisation) of the fine-tuning study (supplement 1.2, 1.3).

    Args:
        inits: initialisations to compare (names of pretrained checkpoints, ``"scratch"``...).
        tasks: default every task of ``recipes.TASKS``.
        regimes: default ``recipes.sampling().regimes``.
    """
    tasks = list(recipes.TASKS) if tasks is None else list(tasks)
    regimes = list(recipes.sampling().regimes) if regimes is None else list(regimes)
    for t in tasks:
        if t not in recipes.TASKS:
            raise LaunchError(f"unknown task {t!r}; choose from {', '.join(recipes.TASKS)}")
    for r in regimes:
        if not 0 < r <= 1:
            raise LaunchError(f"data regime {r!r} must be a fraction in (0, 1]")
    if not inits:
        raise LaunchError("the grid needs at least one initialisation")
    return [GridPoint(t, float(r), str(i)) for t in tasks for r in regimes for i in inits]


@dataclass(frozen=True)
class GridPlan:
    """One task's share of a grid: the job array it submits (or would) and the runs it skips.

    Attributes:
        task: the downstream task.
        runs: runs to submit, in array order (element ``i`` is ``runs[i]``).
        settled: runs not submitted: finished (``metrics.json``) or still queued/running.
        plan: the array's :class:`Plan` (its exact sbatch script on SLURM); None if ``runs`` is empty.
    """

    task: str
    runs: list[str]
    settled: dict[str, "RunStatus"]
    plan: Plan | None
    results_root: str = "results"

    def summary(self) -> str:
        how = "one job array" if len(self.runs) > 1 else "one job"
        lines = [f"{self.task}: {len(self.runs)} run(s) to submit as {how}, {len(self.settled)} "
                 f"settled (finished or queued: not submitted); results in {self.results_root}/<run>"]
        lines += [f"  submit {run}" for run in self.runs]
        lines += [f"  skip   {run} ({st.state})" for run, st in self.settled.items()]
        if self.plan is not None:
            lines += ["", self.plan.summary()]
        return "\n".join(lines)


def _split_grid(grid: Iterable[GridPoint], root: Path, done_file: str | None
                ) -> tuple[dict[str, list[GridPoint]], dict[str, dict[str, "RunStatus"]]]:
    """(points to submit by task, settled runs by task), both in grid order."""
    points_all = list(grid)
    if len({p.run for p in points_all}) != len(points_all):
        raise LaunchError("the grid names a run twice")
    skip = settled_runs([p.run for p in points_all], root, done_file) if done_file else {}
    todo: dict[str, list[GridPoint]] = {}
    settled: dict[str, dict[str, RunStatus]] = {}
    for p in points_all:
        todo.setdefault(p.task, [])
        settled.setdefault(p.task, {})
        if p.run in skip:
            settled[p.task][p.run] = skip[p.run]
        else:
            todo[p.task].append(p)
    return todo, settled


def _array_folder(root: Path, name: str, task: str) -> Path:
    return root / "_arrays" / f"{name}-{task}" / "%j"


def plan_grid(grid: Iterable[GridPoint], *, profile: str, on: str | Cluster,
              results_root: str | Path = "results", name: str = "finetune",
              done_file: str | None = "metrics.json",
              task_recipes: dict[str, Any] | None = None) -> list[GridPlan]:
    """The dry run of :func:`submit_grid`: per task, the runs it would submit and skip and the
    array's sbatch script. Nothing is submitted or written."""
    clus = cluster(on)
    root = Path(results_root)
    todo, settled = _split_grid(grid, root, done_file)
    out = []
    for task, points in todo.items():
        p = None
        if points:
            res = resources(task, profile, clus, name=f"{name}-{task}",
                            recipe=(task_recipes or {}).get(task))
            p = plan(task, profile, clus, folder=_array_folder(root, name, task).absolute(), res=res,
                     array=len(points))
        out.append(GridPlan(task, [pt.run for pt in points], settled[task], p, str(root.absolute())))
    return out


def submit_grid(make_job: Callable[[GridPoint, Path], Callable[[], Any]], grid: Iterable[GridPoint],
                *, profile: str, on: str | Cluster, results_root: str | Path = "results",
                name: str = "finetune", done_file: str | None = "metrics.json",
                task_recipes: dict[str, Any] | None = None) -> dict[str, list[Any]]:
    """Submit a fine-tuning grid as one job array per task, one GPU per element.

    Args:
        make_job: ``make_job(point, run_dir)`` -> the picklable job of that point; it writes
            its results to ``run_dir`` = ``<results_root>/<point.run>/``.
        grid: the points (see :func:`finetune_grid`).
        profile: recipe profile the resources come from.
        on: cluster profile.
        done_file: points whose ``<run>/<done_file>`` exists, or whose job is still queued or
            running, are not submitted again (None submits every point): rerunning a page
            submits only what is missing.
        task_recipes: a task's recipe when it differs from the profile's (overrides); its batch
            is recorded in the resources.

    Returns:
        ``{task: [job, ...]}`` of the submitted points, in grid order (tasks with nothing to
        submit are left out). :func:`plan_grid` shows the same without submitting.
    """
    clus = cluster(on)
    root = Path(results_root)
    todo, _ = _split_grid(grid, root, done_file)
    out: dict[str, list[Any]] = {}
    for task, points in todo.items():
        if not points:
            continue
        res = resources(task, profile, clus, name=f"{name}-{task}", recipe=(task_recipes or {}).get(task))
        fns = [make_job(p, root / p.run) for p in points]
        out[task] = submit_array(fns, [p.run for p in points], on=clus, res=res, results_root=root,
                                 name=f"{name}-{task}", folder=_array_folder(root, name, task))
    return out


# ---------------------------------------------------------------------------------------------
# Status of recorded runs
# ---------------------------------------------------------------------------------------------
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


def _local_state(rec: dict[str, Any]) -> str:
    pickle_path = Path(rec["folder"]) / f"{rec['job_id']}_0_result.pkl"
    if pickle_path.exists():
        try:
            with pickle_path.open("rb") as fh:
                outcome = pickle.load(fh)[0]
        except Exception:  # unreadable pickle: the job ended, its outcome is unknown
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


@dataclass
class RunStatus:
    """One run of the registry: where it ran, its scheduler state, where its results are."""

    run: str
    job_id: str
    cluster: str
    state: str
    results: str
    result_files: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.state.split()[0] in TERMINAL_STATES

    def __str__(self) -> str:
        where = f"job {self.job_id} on {self.cluster}" if self.job_id else "no job recorded"
        return f"{self.run}: {self.state} ({where}); results in {self.results}"


def status(results_root: str | Path = "results") -> list[RunStatus]:
    """Every recorded run with its current state (one sacct call for all SLURM jobs)."""
    recs = job_records(results_root)
    slurm_ids = [r["job_id"] for r in recs if r["executor"] == "slurm"]
    states = slurm_states(slurm_ids)
    out = []
    for r in recs:
        state = states.get(r["job_id"], "UNKNOWN") if r["executor"] == "slurm" else _local_state(r)
        res_dir = Path(r["results"])
        files = sorted(str(p.relative_to(res_dir)) for p in res_dir.rglob("*")
                       if p.is_file() and "submitit" not in p.relative_to(res_dir).parts
                       ) if res_dir.exists() else []
        out.append(RunStatus(r["run"], r["job_id"], r["cluster"], state, r["results"], files))
    return out


# States in which a job will still run (or is running): do not submit its run again.
ACTIVE_STATES = {
    "PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "COMPLETING",
    "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD",
}


def active_runs(runs: Iterable[str], results_root: str | Path = "results") -> dict[str, RunStatus]:
    """The runs among ``runs`` whose latest job is queued or running (it will write its run
    directory: do not touch it)."""
    wanted = set(runs)
    return {s.run: s for s in status(results_root)
            if s.run in wanted and s.state.split()[0] in ACTIVE_STATES}


def settled_runs(runs: Iterable[str], results_root: str | Path = "results",
                 done_file: str = "metrics.json") -> dict[str, RunStatus]:
    """The runs among ``runs`` that need no submission: finished (``<run>/<done_file>`` exists)
    or queued/running. Runs that failed, were cancelled or never ran are left out."""
    root = Path(results_root)
    known = {s.run: s for s in status(root)}
    out: dict[str, RunStatus] = {}
    for run in runs:
        prev = known.get(run)
        if (root / run / done_file).exists():
            out[run] = RunStatus(run, prev.job_id if prev else "", prev.cluster if prev else "",
                                 "COMPLETED", str((root / run).absolute()), [done_file])
        elif prev is not None and prev.state.split()[0] in ACTIVE_STATES:
            out[run] = prev
    return out


def submit_once(fn: Callable[[], Any], *, run: str, on: str | Cluster, res: Resources,
                results_root: str | Path = "results", done_file: str = "metrics.json") -> RunStatus:
    """Submit run ``run`` unless it is finished or already queued; never blocks.

    For notebook pages in the paper profile: the first execution submits and prints the job id;
    a later one finds ``<results_root>/<run>/<done_file>`` and reports the run done, or finds
    the job still queued or running and does not submit it twice. A run whose job ended
    without its results (failed, cancelled) is submitted again.
    """
    root = Path(results_root)
    settled = settled_runs([run], root, done_file)
    if run in settled:
        return settled[run]
    job = submit(fn, run=run, on=on, res=res, results_root=root)
    return RunStatus(run, str(job.job_id), cluster(on).name, "SUBMITTED", str((root / run).absolute()))


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def _parse_sets(items: Sequence[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LaunchError(f"--cluster-set expects key=value, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


class _ClusterAction(argparse.Action):
    """Stores ``--cluster`` and plugs the submission hook into the namespace (``args.submit``)."""

    def __init__(self, *args: Any, submit_hook: Callable[..., int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.submit_hook = submit_hook

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        if self.submit_hook is not None:
            namespace.submit = self.submit_hook


def add_cluster_arguments(parser: argparse.ArgumentParser, default_cluster: str | None = None,
                          submit_hook: Callable[..., int] | None = None) -> None:
    """Add ``--cluster``, ``--cluster-set``, ``--results``, ``--dry-run`` and ``--wait``.

    Args:
        parser: the subcommand's parser.
        default_cluster: profile used when ``--cluster`` is not given (None: run in-process).
        submit_hook: set as ``args.submit`` when ``--cluster`` is given; ``facelib pretrain``
            passes :func:`submit_from_cli`, and its handler calls ``args.submit(job, args)``.
    """
    parser.add_argument("--cluster", default=default_cluster, action=_ClusterAction,
                        submit_hook=submit_hook,
                        help="cluster profile of slurm/clusters.yaml (debug, local, slurm-local, "
                             "v100x8, ...; `facelib jobs clusters` lists them)")
    parser.add_argument("--cluster-set", action="append", metavar="KEY=VALUE",
                        help="override a field of the cluster profile, e.g. partition=gpu (repeatable)")
    parser.add_argument("--results", default="results",
                        help="results root: the registry jobs.jsonl (default results)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the sbatch parameters and script, submit nothing")
    parser.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                        help="wait at most this long for the result (default: return at once)")


def _run_name(run_dir: Path, root: Path) -> str:
    try:
        return str(run_dir.absolute().relative_to(root.absolute()))
    except ValueError:
        return str(run_dir)


def launch_from_args(args: argparse.Namespace, job: Callable[[], Any], kind: str,
                     run_dir: str | Path, recipe: Any = None) -> int:
    """Plan or submit ``job`` (a ``kind`` job writing to ``run_dir``) from the command line.

    ``args`` comes from a parser with :func:`add_cluster_arguments` and a ``--profile``.
    With ``--dry-run`` prints :meth:`Plan.summary` (the exact sbatch script) and submits
    nothing; otherwise submits, prints the job id and where the results will appear, and waits
    at most ``--wait`` seconds if given.

    Args:
        recipe: the job's recipe when it differs from the profile's (``--set`` overrides):
            the resources follow its ``num_gpus`` and ``batch_size``.
    """
    if not getattr(args, "cluster", None):
        raise LaunchError("say where to run: --cluster NAME (see `facelib jobs clusters`)")
    clus = cluster(args.cluster, **_parse_sets(args.cluster_set))
    res = resources(kind, args.profile, clus, recipe=recipe)
    root, run_dir = Path(args.results), Path(run_dir)
    folder = run_dir / "submitit" / "%j"
    if args.dry_run:
        print(plan(kind, args.profile, clus, folder=folder, res=res).summary())
        return 0
    run = _run_name(run_dir, root)
    submitted = submit(job, run=run, on=clus, res=res, results_root=root, folder=folder,
                       results_dir=run_dir)
    print(f"submitted {kind} as job {submitted.job_id} on {clus.name}; results in {run_dir}; "
          f"logs in {submitted.paths.folder}; `facelib jobs status --results {root}` follows it")
    if args.wait is not None or clus.executor == "debug":  # a debug job runs only when waited on
        timeout = args.wait if args.wait is not None else float("inf")
        print(json.dumps(wait(submitted, timeout), default=str, indent=1))
    return 0


def submit_from_cli(job: Any, args: argparse.Namespace) -> int:
    """The ``submit`` hook of ``facelib pretrain``: plan or submit its ``PretrainJob``.

    The job's ``out_dir`` is the run directory and its ``recipe`` sets the resources.
    """
    return launch_from_args(args, job, "pretrain", Path(job.out_dir), recipe=getattr(job, "recipe", None))


def _cmd_status(args: argparse.Namespace) -> int:
    rows = status(args.results)
    if not rows:
        print(f"no runs recorded in {Path(args.results) / REGISTRY_NAME}")
        return 0
    w = max(len(r.run) for r in rows)
    print(f"{'run':<{w}}  {'job':<12} {'cluster':<12} {'state':<12} results")
    for r in rows:
        files = f"  [{len(r.result_files)} file(s)]" if r.result_files else ""
        print(f"{r.run:<{w}}  {r.job_id:<12} {r.cluster:<12} {r.state:<12} {r.results}{files}")
    return 0


def _cmd_clusters(args: argparse.Namespace) -> int:
    for name, c in load_clusters().items():
        print(f"{name:<14} {c.executor:<6} {c.gpus_per_node} GPU(s)/node  {c.description}")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    clus = cluster(args.cluster, **_parse_sets(args.cluster_set))
    print(plan(args.kind, args.profile, clus, folder=Path(args.results) / args.kind / "submitit" / "%j").summary())
    return 0


def _cmd_probe(args: argparse.Namespace) -> int:
    clus = cluster(args.cluster, **_parse_sets(args.cluster_set))
    res = cpu_resources("facelib-probe", tasks=args.tasks)
    if args.gpus:  # one task per GPU, as the training jobs run
        res = dataclasses.replace(res, gpus_per_node=args.gpus, tasks_per_node=args.gpus)
    res = dataclasses.replace(res, nodes=args.nodes)
    run = f"probe/{datetime.datetime.now():%Y%m%d-%H%M%S}"
    job = submit(ProbeJob(Path(args.results) / run), run=run, on=clus, res=res, results_root=args.results)
    print(f"probe job {job.job_id} on {clus.name}: {res.num_tasks} task(s)")
    reports = wait(job, args.timeout)
    reports = reports if isinstance(reports, list) else [reports]
    ok = all(r["sum"] == r["expected"] for r in reports)
    for r in reports:
        print(f"  rank {r['rank']}/{r['world_size']} local {r['local_rank']} "
              f"on node {r['node']} {r['node_name'] or r['host']} "
              f"master {r['master_addr']} backend {r['backend']} all-reduce {r['sum']:g} "
              f"(expected {r['expected']:g})")
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


def add_cli(subparsers: Any) -> None:
    """``facelib jobs {status,clusters,plan,probe}``."""
    p = subparsers.add_parser("jobs", help="submitted runs, cluster profiles, dry runs, probes")
    sub = p.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)
    s = sub.add_parser("status", help="recorded runs with their SLURM state and results")
    s.add_argument("--results", default="results")
    s.set_defaults(func=_cmd_status)
    c = sub.add_parser("clusters", help="cluster profiles of slurm/clusters.yaml")
    c.set_defaults(func=_cmd_clusters)
    pl = sub.add_parser("plan", help="the sbatch parameters of a job, without submitting")
    pl.add_argument("kind", choices=("pretrain", *recipes.TASKS))
    pl.add_argument("--profile", default="paper", choices=recipes.PROFILES)
    pl.add_argument("--cluster", required=True)
    pl.add_argument("--cluster-set", action="append", metavar="KEY=VALUE")
    pl.add_argument("--results", default="results")
    pl.set_defaults(func=_cmd_plan)
    pr = sub.add_parser("probe", help="submit a job that checks torch.distributed across its tasks")
    pr.add_argument("--cluster", required=True)
    pr.add_argument("--cluster-set", action="append", metavar="KEY=VALUE")
    pr.add_argument("--nodes", type=int, default=1)
    pr.add_argument("--tasks", type=int, default=2, help="tasks per node (without --gpus)")
    pr.add_argument("--gpus", type=int, default=0, help="GPUs per node (one task each)")
    pr.add_argument("--timeout", type=float, default=300.0)
    pr.add_argument("--results", default="results")
    pr.set_defaults(func=_cmd_probe)
