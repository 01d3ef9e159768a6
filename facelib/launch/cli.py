"""The ``facelib jobs`` command: status of recorded runs, cluster profiles, dry runs, probes."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
from pathlib import Path
from typing import Any

from facelib import recipes

from .allocation import cpu_resources
from .cluster_options import _parse_sets
from .clusters import cluster, load_clusters
from .dry_run import plan
from .probe import ProbeJob
from .registry import REGISTRY_NAME
from .runs import status
from .submission import submit
from .waiting import wait


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
