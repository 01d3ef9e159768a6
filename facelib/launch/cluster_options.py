"""The ``--cluster`` options of a training command, and planning or submitting its job from them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable, Sequence

from facelib.cli import key_values

from .allocation import resources
from .clusters import cluster
from .dry_run import plan
from .errors import LaunchError
from .submission import submit
from .waiting import wait


def _parse_sets(items: Sequence[str] | None) -> dict[str, Any]:
    """The ``--cluster-set KEY=VALUE`` overrides of a cluster profile."""
    return key_values(items, "--cluster-set", LaunchError)


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
                        help="with --cluster: print the sbatch parameters and script, submit nothing; "
                             "without: print what would run in this process. Nothing is trained, "
                             "written or started")
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
