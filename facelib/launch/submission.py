"""Submitting a job, or a job array, to a cluster profile and recording it in the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from .allocation import Resources
from .clusters import Cluster, cluster
from .errors import LaunchError
from .executors import make_executor
from .registry import _job_record, _record


def submit(fn: Callable[..., Any], *args: Any, run: str, on: str | Cluster, res: Resources,
           results_root: str | Path = "results", folder: str | Path | None = None,
           results_dir: str | Path | None = None, after: Sequence[str] = ()) -> Any:
    """Submit ``fn(*args)`` as run ``run`` and record it in ``<results_root>/jobs.jsonl``.

    Args:
        fn: a picklable callable (a :class:`ResumableJob` to survive requeues).
        run: the run's name; its results go to ``<results_root>/<run>/``.
        on: cluster profile.
        res: resources (see :func:`resources`).
        results_root: where run directories and the registry live.
        folder: submitit folder (logs, pickles); default ``<results_root>/<run>/submitit/%j``.
        results_dir: where the job writes its results, if not ``<results_root>/<run>``.
        after: job ids that must end COMPLETED first (``afterok``; slurm profiles only); the
            job is cancelled when one of them fails.

    Returns:
        The submitit job (``job.job_id``, ``job.paths.stdout``...).
    """
    clus = cluster(on)
    root = Path(results_root)
    run_dir = Path(results_dir) if results_dir is not None else root / run
    folder = Path(folder) if folder is not None else run_dir / "submitit" / "%j"
    ex = make_executor(clus, folder, res, after)
    job = ex.submit(fn, *args)
    _record(root, _job_record(job, run, clus, res, run_dir))
    return job


def submit_array(fns: Sequence[Callable[[], Any]], runs: Sequence[str], *, on: str | Cluster,
                 res: Resources, results_root: str | Path = "results", name: str = "array",
                 folder: str | Path | None = None, after: Sequence[str] = ()) -> list[Any]:
    """Submit ``fns`` as one job array (``executor.batch()``): element ``i`` is run ``runs[i]``.

    All elements share ``res``; on SLURM they form one array (``<id>_<i>``) of which at most the
    cluster's ``array_parallelism`` run at once. ``after``: job ids every element waits for
    (``afterok``, see :func:`submit`).
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
    ex = make_executor(clus, folder, res, after)
    with ex.batch():
        jobs = [ex.submit(fn) for fn in fns]
    for job, run in zip(jobs, runs):
        _record(root, _job_record(job, run, clus, res, root / run, array=name))
    return jobs
