"""The grid of fine-tuning runs: data regime x initialisation, in this process or on a cluster.

Every run of the grid is one :func:`facelib.tasks.finetune.finetune` writing to
``results/<task>/<init>/<pct>pct`` (:func:`run_name`) and resuming there.

* :func:`run_grid` trains the grid in this process (the demo's pages);
* :func:`submit_grid` submits the runs that are neither finished nor queued as one SLURM job
  array of :class:`FinetuneJob` (one GPU per run) through :mod:`facelib.launch`;
* :func:`collect_runs` reads the finished runs back, wherever they ran;
* :func:`page_inits` and :func:`page_grid` are the task pages' glue: the initialisations a page
  compares, and its grid by profile and cluster.

A run directory made with another recipe or other settings is an error, or (``stale="rerun"``,
the pages) is moved aside to ``<run>.stale`` and trained afresh: a page never shows stale
numbers. Shown in ``notebooks/04_face_recognition.py`` ... ``08_3d_reconstruction.py``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from facelib import recipes
from facelib.tasks import backbone as B
from facelib.tasks.finetune import (DataSpec, FinetuneError, StaleRunError, finetune, read_log,
                                    stale_reason)

__all__ = [
    "GRID_CHECKPOINT_EVERY_S",
    "run_name",
    "grid_seeds",
    "run_grid",
    "collect_runs",
    "page_inits",
    "page_grid",
    "submit_grid",
    "FinetuneJob",
]

#: :func:`run_grid`'s (the demo pages') checkpoint interval: a run of the demo grid lasts seconds
#: to a minute, so it is checkpointed at its end (or every minute); see ``finetune(checkpoint_every_s)``.
GRID_CHECKPOINT_EVERY_S = 60.0


def run_name(task: str, init: str, regime: float, seed: int = 0) -> str:
    """``task/init/<pct>pct`` (fine-tuning seed 0) or ``task/init/<pct>pct-seed<k>``, as
    :class:`facelib.launch.GridPoint` names runs."""
    from facelib import launch
    return launch.GridPoint(task, float(regime), init, int(seed)).run


def _move_aside(run_dir: Path) -> Path:
    """Move a stale run to ``<run>.stale`` (replacing an older one); returns where it went."""
    moved = run_dir.with_name(run_dir.name + ".stale")
    if moved.exists():
        shutil.rmtree(moved)
    os.replace(run_dir, moved)
    return moved


def grid_seeds(profile: str, overrides: dict[str, Any] | None = None,
               seeds: Sequence[int] | None = None) -> list[int]:
    """The fine-tuning seeds of every grid cell: ``seeds`` if given, else an override of the
    shared recipe's ``seeds`` (``--set seeds=[0]``), else ``recipes.finetune(profile).seeds``."""
    if seeds is None:
        seeds = (overrides or {}).get("seeds", recipes.finetune(profile).seeds)
    out = [int(s) for s in seeds]
    if not out or any(s < 0 for s in out):
        raise FinetuneError(f"fine-tuning seeds must be non-negative integers, got {list(seeds)!r}")
    return out


def _grid_run(task_name: str, results_root: str, run: str, stale: str, threads: int | None,
              kw: dict[str, Any]) -> dict[str, Any]:
    """One run of :func:`run_grid` (in this process or a worker): train or read it back."""
    if threads:
        import torch
        torch.set_num_threads(threads)
    try:
        m = finetune(task_name, Path(results_root) / run, **kw)
    except StaleRunError:
        if stale == "error":
            raise
        moved = _move_aside(Path(results_root) / run)
        print(f"{run}: made with another recipe or settings; moved to {moved.name}, training afresh", flush=True)
        m = finetune(task_name, Path(results_root) / run, **kw)
    info = json.loads((Path(results_root) / run / "run.json").read_text())
    seconds = sum(r["seconds"] for r in read_log(Path(results_root) / run, "epoch"))
    return {"run": run, "task": task_name, "init": kw["init"], "regime": info["regime_name"],
            "seed": kw["seed"], "n_train": info["n_train"], "seconds": round(seconds, 1), **(m or {})}


def run_grid(task_name: str, inits: dict[str, str | os.PathLike[str] | None], regimes: Sequence[float],
             results_root: str | os.PathLike[str], *, profile: str = "demo", data: DataSpec | None = None,
             overrides: dict[str, Any] | None = None, progress: bool = True,
             stale: str = "error", seeds: Sequence[int] | None = None, processes: int = 1) -> "pd.DataFrame":
    """Fine-tune ``task_name`` for every regime x initialisation x seed on this machine (the demo's grid).

    Runs go to ``results_root/<task>/<init>/<pct>pct[-seed<k>]`` and resume: a finished run is
    read back, an interrupted one continues. (The paper profile submits the same runs as SLURM
    job arrays: :func:`submit_grid`, through :func:`facelib.launch.submit_grid` with
    :class:`FinetuneJob`.)

    Args:
        inits: initialisation name -> weights file (``None`` for ``random``).
        regimes: fractions of the training labels.
        stale: what to do with a run made with another recipe or other settings: ``"error"``
            (:class:`~facelib.tasks.finetune.FinetuneError`), or ``"rerun"``: move it to
            ``<run>.stale`` (replacing an older one) and train afresh (the book's pages, after a
            code or recipe change).
        seeds: fine-tuning seeds of every cell (default ``recipes.finetune(profile).seeds``).
        processes: runs trained at once, each in its own process on one torch thread (the
            demo's small networks use a core far better one run per core than one run on all
            cores: measured on 2 cores, ...). 1 trains them one after the other here. Every
            run's result is the same either way (its seeds fix it; same thread count).

    Returns:
        One row per run, in grid order: ``run, task, init, regime, seed, n_train, seconds`` and
        the metrics.
    """
    if stale not in ("error", "rerun"):
        raise ValueError(f"stale must be 'error' or 'rerun', got {stale!r}")
    import pandas as pd

    seeds = grid_seeds(profile, overrides, seeds)
    jobs = []
    for regime, init, seed in ((r, i, s) for r in regimes for i in inits for s in seeds):
        kw = dict(profile=profile, init=init, init_path=inits[init], regime=regime, data=data,
                  overrides=overrides, resume=True, progress=progress,
                  checkpoint_every_s=GRID_CHECKPOINT_EVERY_S, seed=seed)
        jobs.append((task_name, str(results_root), run_name(task_name, init, regime, seed), stale, kw))
    if processes <= 1 or len(jobs) <= 1:
        return pd.DataFrame([_grid_run(*j[:4], None, j[4]) for j in jobs])
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    if data is not None and data.kind == "synthetic":
        for ds in data.build(task_name):  # render the faces once, on all cores, before the fork
            ds.fill(processes)
    with ProcessPoolExecutor(max_workers=processes, mp_context=mp.get_context("fork")) as pool:
        futures = [pool.submit(_grid_run, *j[:4], 1, j[4]) for j in jobs]
        return pd.DataFrame([f.result() for f in futures])


def collect_runs(results_root: str | os.PathLike[str], task_name: str | None = None,
                 profile: str | None = None) -> "pd.DataFrame":
    """Finished runs under ``results_root/<task>/<init>/<pct>pct`` (e.g. written by SLURM jobs).

    Runs moved aside as ``<pct>pct.stale`` by :func:`run_grid` are left out, and with
    ``profile`` so are runs of another recipe profile (a paper page never shows demo runs that
    share its results folder).

    Returns:
        One row per run with ``metrics.json``: ``run, task, init, regime, seed, n_train,
        seconds`` and the metrics (as :func:`run_grid`); empty if there are none.
    """
    import pandas as pd

    root = Path(results_root)
    pattern = f"{task_name}/*/*/metrics.json" if task_name else "*/*/*/metrics.json"  # <pct>pct[-seed<k>]
    rows = []
    for mfile in sorted(root.glob(pattern)):
        run_dir = mfile.parent
        if run_dir.name.endswith(".stale") or not (run_dir / "run.json").exists():
            continue
        info = json.loads((run_dir / "run.json").read_text())
        if profile is not None and info.get("profile") != profile:
            continue
        seconds = sum(r["seconds"] for r in read_log(run_dir, "epoch"))
        rows.append({"run": str(run_dir.relative_to(root)), "task": info["task"], "init": info["init"],
                     "regime": info["regime_name"], "seed": int(info.get("seed", 0)), "n_train": info["n_train"],
                     "seconds": round(seconds, 1),
                     **json.loads(mfile.read_text())})
    return pd.DataFrame(rows)


def page_inits(profile: str, results_root: str | os.PathLike[str], repo_root: str | os.PathLike[str], *,
               swav_trunk: str | None = None, supervised_trunk: str | None = None,
               imagenet_weights: str | None = None, authors_weights: str | None = None) -> dict[str, str | None]:
    """The initialisations a task page compares (notebooks/04-08).

    ``random`` always; ``supervised`` (identity labels, the paper's supervised baseline) and
    ``ours`` (SwAV) from ``supervised_trunk`` / ``swav_trunk`` or page 03's
    ``results/supervised_<profile>/trunk.pth`` / ``results/swav_<profile>/trunk.pth``. In the
    demo both are pretrained here with page 03's recipes when page 03 has not run. In the
    paper profile a missing trunk is not replaced: ``ours`` names page 03's path (its runs wait
    for it), ``supervised`` is left out unless its file exists or is given (the paper's is a
    VGG-Face2 model you provide). ``imagenet`` and ``authors`` only when their local weights
    files are given (nothing downloads).
    """
    inits: dict[str, str | None] = {"random": None}
    for name, given, method in (("supervised", supervised_trunk, "supervised"), ("ours", swav_trunk, "swav")):
        trunk = Path(given) if given else Path(repo_root) / "results" / f"{method}_{profile}" / "trunk.pth"
        if not trunk.is_file() and not given and profile == "demo":
            trunk = B.demo_trunk(method, Path(repo_root) / "results" / f"{method}_{profile}")
        if trunk.is_file() or given or name == "ours":
            inits[name] = str(trunk)
    if imagenet_weights:
        inits["imagenet"] = imagenet_weights
    if authors_weights:
        inits["authors"] = authors_weights
    return inits


def page_grid(task_name: str, inits: dict[str, str | None], regimes: Sequence[float],
              results_root: str | os.PathLike[str], *, profile: str, data: DataSpec | None = None,
              overrides: dict[str, Any] | None = None, cluster: Any = None,
              wait_s: float | None = None, seeds: Sequence[int] | None = None,
              processes: int = 1) -> "pd.DataFrame":
    """A task page's grid of regime x initialisation runs, by profile and ``cluster``.

    * ``cluster=None``: the demo trains the grid in this process (:func:`run_grid`); the paper
      profile only reads back the finished runs (:func:`collect_runs`) and says how to submit.
    * ``cluster`` = a profile of ``slurm/clusters.yaml``: the runs that are neither finished nor
      queued are submitted as one job array (:func:`submit_grid`, one GPU per run), without
      waiting (except on the in-process ``debug`` profile, or up to ``wait_s`` seconds); then the
      finished ones are read back. Rerunning the page picks up the runs that finished since.

    Returns:
        As :func:`run_grid` / :func:`collect_runs`.
    """
    seeds = grid_seeds(profile, overrides, seeds)
    if cluster is None and profile == "demo":
        return run_grid(task_name, inits, regimes, results_root, profile=profile, data=data,
                        overrides=overrides, stale="rerun", progress=False, seeds=seeds,
                        processes=processes)
    if cluster is not None:
        submit_grid(task_name, inits, regimes, results_root, profile=profile, on=cluster, data=data,
                    overrides=overrides, wait_s=wait_s, stale="rerun", seeds=seeds)
    grid = collect_runs(results_root, task_name, profile)
    want = {run_name(task_name, init, r, s) for init in inits for r in regimes for s in seeds}
    done = len(want & set(grid["run"])) if len(grid) else 0
    print(f"{len(grid)} finished runs under {Path(results_root) / task_name} ({done} of this page's "
          f"{len(want)})" + ("" if cluster is not None else
                             f"; submit the missing ones by setting the page's `cluster` parameter to a "
                             f"profile of slurm/clusters.yaml, or with `facelib finetune {task_name} "
                             f"--profile {profile} --grid --init ... --cluster NAME`"))
    return grid


def _finetune_job_factory(task_name: str, inits: dict[str, str | None], *, profile: str,
                          data: DataSpec | None, overrides: dict[str, Any] | None,
                          num_workers: int | None) -> Any:
    def make(point: Any, run_dir: Path) -> FinetuneJob:
        return FinetuneJob(task_name, str(Path(run_dir).absolute()), profile=profile, init=point.init,
                           init_path=None if inits[point.init] is None else str(inits[point.init]),
                           regime=point.regime, data=data or DataSpec(), overrides=dict(overrides or {}),
                           num_workers=num_workers, seed=point.seed)
    return make


def submit_grid(task_name: str, inits: dict[str, str | os.PathLike[str] | None], regimes: Sequence[float],
                results_root: str | os.PathLike[str], *, profile: str, on: Any,
                data: DataSpec | None = None, overrides: dict[str, Any] | None = None,
                dry_run: bool = False, wait_s: float | None = None,
                num_workers: int | None = None, stale: str = "error",
                seeds: Sequence[int] | None = None, after: Sequence[str] = (),
                dry_run_plans: list[Any] | None = None) -> list[Any]:
    """Submit the regime x initialisation grid of ``task_name`` as one job array on cluster ``on``.

    Each element is a :class:`FinetuneJob` of one run (one GPU, the recipe's whole batch:
    ``recipes.Launch.finetune_gpus_per_run``) writing to ``results_root/<task>/<init>/<pct>pct``.
    Runs that finished (``metrics.json``) or whose job is still queued or running are not
    submitted again. Prints the array's job ids and where the results will appear.

    A run directory made with other settings or another recipe (not queued or running) is an
    error (``stale="error"``), or is moved to ``<run>.stale`` and submitted afresh
    (``stale="rerun"``, the pages, as :func:`run_grid`): a page never shows stale numbers.

    Args:
        inits: initialisation name -> weights file (``None`` for ``random``).
        on: a cluster profile name of ``slurm/clusters.yaml`` or a :class:`facelib.launch.Cluster`.
        dry_run: print the runs it would submit and skip and the array's sbatch script; submit nothing.
        dry_run_plans: with ``dry_run``, the :class:`facelib.launch.GridPlan` of the dry run are
            appended to this list (what it would submit, stale runs included, and skip).
        wait_s: wait at most this long for the submitted runs (None: return at once). Jobs of the
            ``debug`` profile run in this process, now.
        num_workers: DataLoader workers of each run (None: the job's CPUs minus one, see
            :class:`FinetuneJob`).
        stale: ``"error"`` or ``"rerun"`` (see above).
        after: job ids the array waits for (``afterok``, slurm; ``facelib pipeline``): a weights
            file that does not exist yet is then expected from them (the pretraining's trunk).

    Returns:
        The submitted submitit jobs, in grid order (empty after a dry run or when all are settled).
    """
    from facelib import launch

    if stale not in ("error", "rerun"):
        raise ValueError(f"stale must be 'error' or 'rerun', got {stale!r}")
    data = data or DataSpec()

    clus = launch.cluster(on)
    root = Path(results_root)
    inits = {k: (None if v is None else str(v)) for k, v in inits.items()}
    seeds = grid_seeds(profile, overrides, seeds)
    grid = launch.finetune_grid(list(inits), tasks=[task_name], regimes=list(regimes), seeds=seeds)
    for init, path in inits.items():  # a job that can only fail is not submitted
        problem = (f"init {init!r} has no weights file" if path is None and init != "random" else
                   f"init {init!r}: weights file {path} does not exist (nothing is downloaded)"
                   if path is not None and not Path(path).is_file() else None)
        if problem and after and path is not None:
            continue  # written by a job the array waits for
        if problem and dry_run:
            print(f"warning: {problem}: its runs would fail")
        elif problem:
            raise FinetuneError(f"{problem}; give it, or leave the initialisation out of the grid")
    active = launch.active_runs([p.run for p in grid], root)  # their jobs write there: leave them be
    resubmit = []
    for p in grid:
        why = None if p.run in active else stale_reason(root / p.run, task_name, p.init, p.regime,
                                                        profile=profile, data=data, overrides=overrides,
                                                        seed=p.seed)
        if why is None:
            continue
        resubmit.append(p.run)
        if dry_run:
            print(f"warning: {why}" + ("; it would be moved aside and submitted afresh" if stale == "rerun" else
                                       "; submitting would stop here"))
        elif stale == "error":
            raise StaleRunError(f"{why} (or let the page move it aside: stale='rerun')")
        else:
            moved = _move_aside(root / p.run)
            print(f"{p.run}: made with another recipe or settings; moved to {moved.name}, submitted afresh")
    from facelib.tasks.finetune import make_task
    recipe = make_task(task_name, profile, overrides, num_classes=2).recipe  # Finetune fields go to the shared one
    kw = dict(profile=profile, on=clus, results_root=root, name="finetune", task_recipes={task_name: recipe},
              after=after)
    if dry_run:
        plans = launch.plan_grid(grid, resubmit=resubmit if stale == "rerun" else (), **kw)
        for gp in plans:
            print(gp.summary())
        if dry_run_plans is not None:
            dry_run_plans.extend(plans)
        return []
    jobs = launch.submit_grid(_finetune_job_factory(task_name, inits, profile=profile, data=data,
                                                    overrides=overrides, num_workers=num_workers),
                              grid, **kw).get(task_name, [])
    n_settled = len(grid) - len(jobs)
    if jobs:
        array_id = str(jobs[0].job_id).split("_")[0]
        print(f"{task_name}: submitted {len(jobs)} run(s) as job array {array_id} on {clus.name} "
              f"({', '.join(str(j.job_id) for j in jobs)}); {n_settled} finished or queued run(s) not "
              f"submitted again; results appear in {root.absolute()}/{task_name}/<init>/<pct>pct; "
              f"`facelib jobs status --results {root}` follows them")
    else:
        print(f"{task_name}: all {len(grid)} run(s) of the grid are finished or queued on "
              f"{clus.name}; nothing submitted")
    if jobs and (clus.executor == "debug" or wait_s is not None):
        deadline = time.monotonic() + (wait_s if wait_s is not None else float("inf"))
        for job in jobs:
            launch.wait(job, max(deadline - time.monotonic(), 0.0))
    return jobs


@dataclass
class FinetuneJob:
    """A picklable fine-tuning run for :mod:`facelib.launch`: ``job()`` trains (resuming).

    One process on one GPU with the recipe's whole batch (``recipes.Launch.finetune_gpus_per_run``;
    :func:`facelib.launch.resources` asks exactly that), so a job of several tasks is refused.
    ``checkpoint()`` is submitit's pre-emption hook: it resubmits the same job, which resumes
    from the last finished epoch. Starts, ends and failures go to ``run_dir/events.jsonl``.

    ``num_workers=None``: the job's CPUs (``SLURM_CPUS_PER_TASK``) minus one DataLoader
    workers under SLURM, none elsewhere; the augmentation of every sample is seeded by its
    index, so the worker count does not change the result.
    """

    task: str
    run_dir: str
    profile: str = "paper"
    init: str = "random"
    init_path: str | None = None
    regime: float = 1.0
    data: DataSpec = field(default_factory=DataSpec)
    overrides: dict[str, Any] = field(default_factory=dict)
    num_workers: int | None = None
    seed: int = 0

    def workers(self) -> int:
        if self.num_workers is not None:
            return self.num_workers
        cpus = os.environ.get("SLURM_CPUS_PER_TASK", "")
        return max(int(cpus) - 1, 0) if cpus.isdigit() else 0

    def __call__(self) -> dict[str, Any] | None:
        from facelib import dist as fdist
        from facelib import launch
        world = fdist.detect().world_size
        if world > 1:
            raise FinetuneError(f"{self.run_dir}: this job has {world} tasks, but a fine-tuning run is one "
                                "process on one GPU with the recipe's whole batch: submit it through "
                                "facelib.launch.resources (recipes.Launch.finetune_gpus_per_run = 1)")
        launch.record_event(self.run_dir, "start", task=self.task, init=self.init, regime=self.regime)
        try:
            out = finetune(self.task, self.run_dir, profile=self.profile, init=self.init,
                           init_path=self.init_path, regime=self.regime, data=self.data,
                           overrides=self.overrides, resume=True, num_workers=self.workers(),
                           progress=False, seed=self.seed)
        except Exception as exc:
            launch.record_event(self.run_dir, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        launch.record_event(self.run_dir, "done")
        return out

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit
        from facelib import launch
        launch.record_event(self.run_dir, "checkpoint")
        return submitit.helpers.DelayedSubmission(dataclasses.replace(self))
