"""The submitit executor of a cluster profile, configured for a job's resources.

The executor class is the one the profile names (``debug``, ``local`` or ``slurm``), never
submitit's auto-detection.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence

from .allocation import Resources
from .clusters import Cluster, cluster
from .errors import LaunchError


def _slurm_parameters(res: Resources, clus: Cluster, after: Sequence[str] = ()) -> dict[str, Any]:
    """The exact ``SlurmExecutor.update_parameters`` arguments for ``res`` on ``clus``.

    ``after``: job ids (an array's id stands for all its elements) that must all end COMPLETED
    before this job starts (``--dependency=afterok:...``); if one fails or is cancelled, SLURM
    cancels this job too (``--kill-on-invalid-dep=yes``) instead of leaving it pending for ever.
    """
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
    if not res.gpus_per_node:  # a CPU job: the CPU partition, without the GPU node constraint
        if clus.cpu_partition is not None:
            params["partition"] = clus.cpu_partition
        params.pop("constraint", None)
    if after:
        params["dependency"] = "afterok:" + ":".join(str(a) for a in after)
        params["additional_parameters"] = {"kill_on_invalid_dep": "yes"}
    if clus.setup:
        params["setup"] = list(clus.setup)
    return params


def make_executor(on: str | Cluster, folder: str | Path, res: Resources, after: Sequence[str] = ()) -> Any:
    """The submitit executor of cluster ``on``, configured for ``res``.

    The executor class is the one the profile names (never auto-detected). ``after``: job ids
    this job waits for (``afterok``; slurm profiles only).

    Raises:
        LaunchError: a slurm profile while ``sbatch`` is not on PATH; dependencies on a
            profile that is not slurm.
    """
    import submitit

    clus = cluster(on)
    folder = Path(folder)
    if after and clus.executor != "slurm":
        raise LaunchError(f"cluster {clus.name!r} ({clus.executor} executor) cannot hold a job until "
                          "others end; only slurm profiles take dependencies")
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
    ex.update_parameters(**_slurm_parameters(res, clus, after))
    return ex
