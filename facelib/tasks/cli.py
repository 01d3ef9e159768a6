"""``facelib finetune TASK --init ... --regime ...``: one fine-tuning run, or a grid of them.

One run trains in this process (:func:`facelib.tasks.finetune.finetune`) or, with
``--cluster NAME``, is submitted as a job (:class:`facelib.tasks.grid.FinetuneJob`). With
``--grid`` (or several ``--init`` / ``--regime``) the grid of data regimes x initialisations
trains in this process (:func:`facelib.tasks.grid.run_grid`) or, with ``--cluster``, is one job
array of one-GPU runs that skips the finished and queued ones
(:func:`facelib.tasks.grid.submit_grid`; ``--dry-run`` prints its sbatch script). Without
``--cluster``, ``--dry-run`` prints what would train in this process (recipe, data,
initialisation, run folders and their resume state) and trains, writes and starts nothing.

Bad arguments and files end in one line, ``facelib finetune: error: ...``, and exit status 2.
Weights files and checkpoints are read without unpickling anything but tensors and plain values
unless ``--trusted``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from facelib import checkpoint, recipes
from facelib.cli import ArgumentError, key_values
from facelib.errors import InputError
from facelib.tasks import backbone as B
from facelib.tasks import finetune as FT
from facelib.tasks.finetune import TASK_CLASSES, DataSpec, FinetuneError, finetune
from facelib.tasks.grid import FinetuneJob, collect_runs, grid_seeds, run_grid, run_name, submit_grid

__all__ = ["add_cli"]


def _init_spec(text: str) -> tuple[str, str | None]:
    """``--init NAME`` or ``--init NAME=PATH`` -> (name, path)."""
    name, sep, path = text.partition("=")
    if name not in B.INITS:
        raise argparse.ArgumentTypeError(f"unknown initialisation {name!r} in {text!r}; choose one of "
                                         f"{', '.join(B.INITS)} (optionally NAME=WEIGHTS_FILE)")
    if sep and not path:
        raise argparse.ArgumentTypeError(f"--init {text!r}: no weights file after '='")
    return name, (path or None)


def _cli_points(args: argparse.Namespace) -> tuple[dict[str, str | None], list[float]] | str:
    """(inits, regimes) of the command line, or an error message."""
    inits: dict[str, str | None] = {}
    for name, path in args.init or [("random", None)]:
        if name in inits:
            return f"--init {name} is given twice"
        inits[name] = path
    if args.init_path:
        if len(inits) > 1:
            return "--init-path goes with a single --init; for several write --init NAME=PATH"
        [(name, path)] = inits.items()
        if path is not None:
            return f"--init {name}={path} and --init-path {args.init_path}: give the weights file once"
        inits[name] = args.init_path
    regimes = list(args.regime) if args.regime else (list(recipes.sampling().regimes) if args.grid else [1.0])
    if len(set(regimes)) != len(regimes):
        return f"--regime lists a value twice: {regimes}"
    return inits, regimes


def _run(args: argparse.Namespace) -> int:
    if args.reader:
        data = DataSpec(kind="reader", reader=args.reader, root=args.root, test_reader=args.test_reader or args.reader,
                        test_root=args.test_root or args.root, split=args.split, test_split=args.test_split)
    else:
        data = DataSpec(n_train=args.n_train, n_test=args.n_test, size=args.size,
                        num_identities=args.identities,
                        **({} if args.seed is None else {"seed": args.seed}))
    points = _cli_points(args)
    if isinstance(points, str):
        print(f"error: {points}", file=sys.stderr)
        return 2
    inits, regimes = points
    overrides = key_values(args.set, "--set", FinetuneError)
    for name, path in inits.items():  # on a cluster the file may exist there only
        if path is not None and not Path(path).is_file() and not args.cluster and not args.dry_run:
            raise B.InitError(f"--init {name}={path}: no such weights file (nothing is downloaded)")
    if args.grid or len(inits) * len(regimes) > 1:
        return _run_grid_cli(args, inits, regimes, data, overrides)
    [(init, init_path)], [regime] = inits.items(), regimes
    run_dir = args.run_dir or str(Path(args.results) / run_name(args.task, init, regime))
    if args.dry_run and not args.cluster:
        return _dry_run_here(args, {init: init_path}, [regime], data, overrides, {(init, regime): Path(run_dir)},
                             resume=args.resume)
    if args.cluster:
        from facelib import launch
        recipe = FT.make_task(args.task, args.profile, overrides, num_classes=2).recipe
        job = FinetuneJob(args.task, str(Path(run_dir).absolute()), profile=args.profile, init=init,
                          init_path=init_path, regime=regime, data=data, overrides=overrides,
                          num_workers=args.workers)
        return launch.launch_from_args(args, job, args.task, run_dir, recipe=recipe)
    metrics_ = finetune(args.task, run_dir, profile=args.profile, init=init, init_path=init_path,
                        regime=regime, data=data, overrides=overrides, resume=args.resume,
                        until_epoch=args.until_epoch, num_workers=args.workers or 0, trusted=args.trusted)
    if metrics_ is None:
        print(f"stopped after epoch {args.until_epoch}; continue with --resume ({run_dir})")
    else:
        print(json.dumps(metrics_, indent=1))
    return 0


def _run_grid_cli(args: argparse.Namespace, inits: dict[str, str | None], regimes: list[float],
                  data: DataSpec, overrides: dict[str, Any]) -> int:
    """``facelib finetune TASK --grid`` (or several --init / --regime): a job array, or in-process."""
    for flag, given in (("--run-dir", args.run_dir), ("--until-epoch", args.until_epoch),
                        ("--trusted", args.trusted)):
        if given:
            print(f"error: {flag} is for a single run; a grid writes each run to "
                  f"{args.results}/{args.task}/<init>/<pct>pct and resumes it", file=sys.stderr)
            return 2
    if not args.cluster:
        seeds = grid_seeds(args.profile, overrides, args.seeds)
        if args.dry_run:
            dirs = {(i if s == seeds[0] else f"{i} (seed {s})", r): Path(args.results) / run_name(args.task, i, r, s)
                    for r in regimes for i in inits for s in seeds}
            return _dry_run_here(args, inits, regimes, data, overrides, dirs, resume=True)
        table = run_grid(args.task, inits, regimes, args.results, profile=args.profile, data=data,
                         overrides=overrides, seeds=seeds)
        print(table.to_string(index=False))
        return 0
    from facelib import launch
    clus = launch.cluster(args.cluster, **launch._parse_sets(args.cluster_set))
    jobs = submit_grid(args.task, inits, regimes, args.results, profile=args.profile, on=clus, data=data,
                       overrides=overrides, dry_run=args.dry_run, wait_s=args.wait, num_workers=args.workers,
                       seeds=args.seeds)
    if jobs and (args.wait is not None or clus.executor == "debug"):
        table = collect_runs(args.results, args.task, args.profile)
        print(table.to_string(index=False) if len(table) else "no finished runs")
    return 0


def _run_state(run_dir: Path, resume: bool, trusted: bool) -> tuple[str, str | None]:
    """What a run would do in ``run_dir`` (new, resume from epoch k, finished), and why it could not."""
    if (run_dir / "metrics.json").exists():
        if not resume:
            return "finished", f"{run_dir} already holds a run: pass --resume to read its metrics"
        return "finished: its metrics.json would be read back, nothing trained", None
    return checkpoint.resume_state(run_dir / FT.CHECKPOINT, resume, trusted)


def _dry_run_here(args: argparse.Namespace, inits: dict[str, str | None], regimes: list[float], data: DataSpec,
                  overrides: dict[str, Any], run_dirs: dict[tuple[str, float], Path], resume: bool) -> int:
    """``--dry-run`` without ``--cluster``: what would train in this process; nothing runs or is written."""
    from facelib import launch

    task = FT.make_task(args.task, args.profile, overrides, num_classes=2)
    r, problems = task.recipe, []
    arch = recipes.pretrain(args.profile).arch
    items = [("recipe", f"{args.task}, {args.profile} profile, {arch}, {r.epochs} epochs, batch {r.batch_size}, "
                        f"{r.optimizer} at LR {r.lr:g}"),
             ("overrides", ", ".join(args.set or []) or "none (--set)")]
    try:
        train_ds, test_ds = data.build(args.task)
        where = f"{data.reader} at {data.root}" if data.kind == "reader" else f"synthetic faces, {data.size} px"
        items.append(("data", f"{where}: {len(train_ds)} training and {len(test_ds)} test images"))
        for regime in regimes:
            n = len(FT.training_subset(args.task, data, regime, train_ds))
            items.append((f"regime {regime:g}", f"{n} training images"))
    except (InputError, ValueError, OSError) as e:
        items.append(("data", "cannot be read"))
        problems.append(f"data: {e}")
    for name, path in inits.items():
        try:
            _, info = B.build_trunk(arch, name, path, trusted=args.trusted)
            items.append((f"init {name}", f"{path} ({info['layout']} layout)" if path else "random weights"))
        except InputError as e:
            items.append((f"init {name}", "cannot be used"))
            problems.append(str(e))
    for (name, regime), run_dir in run_dirs.items():
        state, problem = _run_state(run_dir, resume, args.trusted)
        items.append((f"run {name} {regime:g}", f"{run_dir}: {state}"))
        problems += [problem] if problem else []
    device = "cuda" if torch.cuda.is_available() else "cpu"
    items.append(("process", f"this one, on {device}, {args.workers or 0} loader worker(s)"))
    print(launch.local_plan("facelib finetune", items))
    if problems:
        raise ArgumentError("the run would stop: " + "; ".join(problems))
    return 0


def add_cli(subparsers: Any) -> None:
    """``facelib finetune TASK --init ... --regime ...`` (one run, or a grid with ``--grid``)."""
    p = subparsers.add_parser(
        "finetune", help="fine-tune a backbone on a downstream task (supplement 1.2)",
        description=FT.__doc__.split("\n\n")[0] + " One run, or with --grid (or several --init / --regime) "
        "the grid of data regimes x initialisations: in this process, or with --cluster as one job "
        "array of one-GPU runs that skips the finished and queued ones (--dry-run prints its sbatch "
        "script).")
    p.add_argument("task", choices=sorted(TASK_CLASSES))
    p.add_argument("--init", action="append", type=_init_spec, metavar="NAME[=PATH]",
                   help=f"backbone initialisation ({', '.join(B.INITS)}; default random), with its "
                        "weights file after '='; repeat it for a grid")
    p.add_argument("--init-path", default=None, help="weights file of the single --init (local; nothing downloads)")
    p.add_argument("--regime", type=float, nargs="+", default=None, metavar="FRACTION",
                   help="fraction(s) of the training labels (e.g. 0.1; default 1.0, or with --grid "
                        "every regime of supplement 1.3)")
    p.add_argument("--grid", action="store_true",
                   help="the grid of every --regime (default: recipes.sampling().regimes) x every --init")
    p.add_argument("--profile", choices=recipes.PROFILES, default="demo")
    p.add_argument("--run-dir", default=None, help="explicit run directory of a single run (overrides --results)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="recipe override (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue the run in the run directory")
    p.add_argument("--until-epoch", type=int, default=None, help="stop after this many epochs")
    p.add_argument("--n-train", type=int, default=300, help="synthetic training faces")
    p.add_argument("--n-test", type=int, default=100, help="synthetic test faces (other persons)")
    p.add_argument("--size", type=int, default=96, help="side of the rendered synthetic faces")
    p.add_argument("--identities", type=int, default=20, help="persons per synthetic set")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the synthetic training set (default: DataSpec's, other persons than the "
                        "pretraining faces)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, metavar="SEED",
                   help="fine-tuning seeds of every grid cell (default: the recipe's Finetune.seeds, 3 in the "
                        "demo, 1 in the paper profile; --set seeds=[...] does the same)")
    p.add_argument("--reader", default=None, help="a dataset in its native format (facelib.data.readers) instead of synthetic faces")
    p.add_argument("--root", default=None, help="root of the --reader training set")
    p.add_argument("--test-reader", default=None, help="reader of the test set (default: --reader)")
    p.add_argument("--test-root", default=None, help="root of the test set (default: --root)")
    p.add_argument("--split", default=None, help="keep only training records of this split")
    p.add_argument("--test-split", default=None, help="keep only test records of this split")
    p.add_argument("--workers", type=int, default=None,
                   help="DataLoader workers (default: none in this process; a submitted run uses its CPUs minus one)")
    p.add_argument("--trusted", action="store_true",
                   help=checkpoint.TRUSTED_HELP + " (the --init file and the run's checkpoint)")
    from facelib import launch
    # --cluster NAME submits the run (or the grid, as a job array) as a job (--dry-run prints
    # its sbatch script); --results is the results root: runs go to RESULTS/<task>/<init>/<pct>pct
    launch.add_cluster_arguments(p)
    p.set_defaults(func=_run)
