"""What a job asks the scheduler for, derived from the recipes (:func:`resources`).

Pretraining asks ``Pretrain.num_gpus`` GPUs (64 in the paper: 8 nodes x 8 GPUs, 64 images per
GPU for the global batch of 4096, supplement 1.1). A fine-tuning run asks
``Launch.finetune_gpus_per_run`` = 1 GPU and takes its recipe's whole batch there: the loop is
one process with exact resume, and every paper recipe fits one 16 GB GPU (measured peaks in that
field's note); the supplement's per-task GPU counts (``num_gpus`` of each task recipe: 8 for
recognition) are kept as printed and shown by the dry run. One task per GPU; CPUs and memory
per task, time wanted and the requeue policy are ``recipes.Launch``; partitions, GPUs per node
and time limits are the cluster profile's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facelib import recipes

from .clusters import Cluster, cluster
from .errors import LaunchError


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
                "process on one GPU (facelib.tasks.grid.FinetuneJob); keep it at 1"
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


def preprocess_resources(profile: str = "paper", on: str | Cluster = "debug", **launch_overrides: Any) -> Resources:
    """What one element of the preprocessing job array asks for (no GPU).

    CPUs: the cluster's ``cpus_per_task`` when its profile sets one, else
    ``Launch.preprocess_cpus_per_task``; memory likewise (``mem_per_task_gb`` /
    ``Launch.preprocess_mem_gb``); time: ``Launch.preprocess_timeout_min`` capped by the
    cluster's limit. The element runs one single-threaded detector process per CPU.
    """
    clus = cluster(on)
    rec = recipes.launch(profile, **launch_overrides)
    timeout = rec.preprocess_timeout_min
    if clus.time_limit_min is not None:
        timeout = min(timeout, clus.time_limit_min)
    return Resources(
        name="facelib-preprocess", nodes=1, tasks_per_node=1, gpus_per_node=0,
        cpus_per_task=clus.cpus_per_task if clus.cpus_per_task is not None else rec.preprocess_cpus_per_task,
        mem_gb=clus.mem_per_task_gb if clus.mem_per_task_gb is not None else rec.preprocess_mem_gb,
        timeout_min=timeout, signal_delay_s=rec.signal_delay_s, max_num_timeout=rec.max_num_timeout,
    )


def cpu_job_resources(name: str, profile: str = "paper", on: str | Cluster = "debug") -> Resources:
    """A small one-CPU job of a chain (the merge of the preprocessing parts, the results page):
    ``Launch.cpu_job_timeout_min`` capped by the cluster's limit."""
    clus = cluster(on)
    rec = recipes.launch(profile)
    timeout = rec.cpu_job_timeout_min
    if clus.time_limit_min is not None:
        timeout = min(timeout, clus.time_limit_min)
    return cpu_resources(name, timeout_min=timeout, signal_delay_s=rec.signal_delay_s,
                         max_num_timeout=rec.max_num_timeout)


def cpu_resources(name: str, tasks: int = 1, timeout_min: int = 15, cpus_per_task: int = 1,
                  signal_delay_s: int = 30, max_num_timeout: int = 3) -> Resources:
    """Resources of a CPU-only job of ``tasks`` tasks on one node (probes, small utilities)."""
    if tasks < 1:
        raise LaunchError(f"tasks must be >= 1, got {tasks}")
    return Resources(name=name, nodes=1, tasks_per_node=tasks, gpus_per_node=0,
                     cpus_per_task=cpus_per_task, mem_gb=0, timeout_min=timeout_min,
                     signal_delay_s=signal_delay_s, max_num_timeout=max_num_timeout)
