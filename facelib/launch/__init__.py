"""Launching jobs through submitit: executors by cluster profile, resources from the recipes.

One idea per module; the public names are re-exported here, so ``from facelib import launch`` and
``launch.<name>`` is the way in:

* :mod:`~facelib.launch.clusters`: cluster profiles of ``slurm/clusters.yaml``, chosen by name.
* :mod:`~facelib.launch.allocation`: what a job asks for (:func:`resources`), from the recipes.
* :mod:`~facelib.launch.executors`: the submitit executor a profile names, never auto-detected.
* :mod:`~facelib.launch.dry_run`: :func:`plan`, the exact sbatch script, submitting nothing.
* :mod:`~facelib.launch.submission`: :func:`submit`, :func:`submit_array`.
* :mod:`~facelib.launch.registry`: every submission recorded in ``<results>/jobs.jsonl``.
* :mod:`~facelib.launch.waiting`: :func:`wait` with a deadline, :func:`interrupt` (USR2).
* :mod:`~facelib.launch.states`: scheduler states (``squeue``, ``sacct``, local jobs).
* :mod:`~facelib.launch.runs`: :func:`status` of recorded runs, :func:`submit_once`.
* :mod:`~facelib.launch.events`: the ``events.jsonl`` log of a run directory.
* :mod:`~facelib.launch.jobs`: :class:`ResumableJob` (requeued, resumed), :class:`CountingJob`.
* :mod:`~facelib.launch.probe`: :class:`ProbeJob`, the torch.distributed wiring check.
* :mod:`~facelib.launch.grid`: the fine-tuning grid as one job array per task.
* :mod:`~facelib.launch.cluster_options`: ``--cluster`` options of the training commands.
* :mod:`~facelib.launch.cli`: the ``facelib jobs`` command.

Page: notebooks/03_swav_pretraining.py and the fine-tuning pages submit through here.
"""

from __future__ import annotations

# Besides __all__, other modules and the tests use ``launch.recipes``, ``launch._mix``,
# ``launch._record``, ``launch._expand_array_ids`` and ``launch._parse_sets``: keep them imported.
from facelib import recipes

from .allocation import Resources, cpu_job_resources, cpu_resources, preprocess_resources, resources
from .cli import add_cli
from .cluster_options import _parse_sets, add_cluster_arguments, launch_from_args, submit_from_cli
from .clusters import EXECUTORS, Cluster, cluster, clusters_file, load_clusters
from .dry_run import Plan, local_plan, plan
from .errors import JobEndedWithoutResult, JobTimeout, LaunchError
from .events import read_events, record_event
from .executors import make_executor
from .grid import GridPlan, GridPoint, finetune_grid, plan_grid, submit_grid
from .jobs import CheckpointError, CountingJob, ResumableJob, _mix
from .probe import ProbeJob
from .registry import REGISTRY_NAME, _record, job_records
from .runs import RunStatus, active_runs, settled_runs, status, submit_once
from .states import ACTIVE_STATES, TERMINAL_STATES, _expand_array_ids, slurm_states
from .submission import submit, submit_array
from .waiting import interrupt, wait

__all__ = [
    "LaunchError",
    "JobTimeout",
    "JobEndedWithoutResult",
    "EXECUTORS",
    "Cluster",
    "clusters_file",
    "load_clusters",
    "cluster",
    "Resources",
    "resources",
    "cpu_resources",
    "cpu_job_resources",
    "preprocess_resources",
    "make_executor",
    "Plan",
    "plan",
    "local_plan",
    "submit",
    "submit_array",
    "REGISTRY_NAME",
    "job_records",
    "wait",
    "interrupt",
    "TERMINAL_STATES",
    "ACTIVE_STATES",
    "slurm_states",
    "record_event",
    "read_events",
    "ResumableJob",
    "CheckpointError",
    "CountingJob",
    "ProbeJob",
    "GridPoint",
    "finetune_grid",
    "GridPlan",
    "plan_grid",
    "submit_grid",
    "RunStatus",
    "status",
    "active_runs",
    "settled_runs",
    "submit_once",
    "add_cluster_arguments",
    "launch_from_args",
    "submit_from_cli",
    "add_cli",
]
