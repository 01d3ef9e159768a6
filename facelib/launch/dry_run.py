"""Dry runs: the exact sbatch script or executor parameters of a job, submitting nothing.

Without a cluster, a training command's ``--dry-run`` prints :func:`local_plan`: what would run
in this process (recipe, data, output folder, resume state), and runs nothing.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .allocation import Resources, resources
from .clusters import Cluster, cluster
from .errors import LaunchError
from .executors import _slurm_parameters


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
            (f"  {r.nodes} node(s) x {r.gpus_per_node} GPU(s) = {r.num_gpus} GPUs, "
             if r.gpus_per_node else f"  CPU job: {r.nodes} node(s), ")
            + f"{r.tasks_per_node} task(s) per node, {r.cpus_per_task} CPU(s) per task"
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


def local_plan(command: str, items: list[tuple[str, str]]) -> str:
    """The text of a dry run without ``--cluster``: ``command`` and one ``name: value`` line each."""
    w = max((len(k) for k, _ in items), default=0)
    head = (f"{command} --dry-run: nothing is trained, written or started. Without --cluster this "
            "would run in this process:")
    return "\n".join([head, *(f"  {k + ':':<{w + 1}} {v}" for k, v in items)])


def plan(kind: str, profile: str, on: str | Cluster, folder: str | Path = "results/<run>/submitit/%j",
         res: Resources | None = None, array: int | None = None, after: Sequence[str] = ()) -> Plan:
    """The sbatch script (slurm) or executor parameters a ``kind`` job would be submitted with.

    Nothing is submitted and nothing is written: the script is made by the same submitit code
    that writes it at submission (``SlurmExecutor._make_submission_file_text``; for a job array
    of ``array`` elements, with the ``--array`` line ``executor.batch()`` adds). ``after``: the
    job ids (or, in a dry run of a chain, placeholders naming the steps) it would wait for.
    """
    if array is not None and array < 1:
        raise LaunchError(f"a job array needs at least one element, got {array}")
    import submitit

    clus = cluster(on)
    res = res or resources(kind, profile, clus)
    if clus.executor == "slurm":
        params = _slurm_parameters(res, clus, after)
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
