"""The fine-tuning grid as job arrays: one array per task, one GPU per element.

:func:`submit_grid` does not submit a point whose ``metrics.json`` exists or whose job is still
queued or running, so rerunning a page or a command submits only what is missing;
:func:`plan_grid` is its dry run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from facelib import recipes

from .allocation import resources
from .clusters import Cluster, cluster
from .dry_run import Plan, plan
from .errors import LaunchError
from .runs import RunStatus, settled_runs
from .submission import submit_array


@dataclass(frozen=True)
class GridPoint:
    """One fine-tuning run: a task, a data regime (fraction of the labels), an initialisation
    and a fine-tuning seed (head initialisation, data order and augmentation)."""

    task: str
    regime: float
    init: str
    seed: int = 0

    @property
    def run(self) -> str:
        """Run name, e.g. ``landmarks/swav-vggface2/2pct`` (seed 0) or ``.../2pct-seed1``;
        results go to ``results/<run>/``."""
        pct = self.regime * 100
        pct_s = f"{pct:g}".replace(".", "p")
        return f"{self.task}/{self.init}/{pct_s}pct" + (f"-seed{self.seed}" if self.seed else "")


def finetune_grid(inits: Sequence[str], tasks: Sequence[str] | None = None,
                  regimes: Sequence[float] | None = None, seeds: Sequence[int] = (0,)) -> list[GridPoint]:
    """Every (task, regime, initialisation, seed) of the fine-tuning study (supplement 1.2, 1.3).

    Args:
        inits: initialisations to compare (names of pretrained checkpoints, ``"scratch"``...).
        tasks: default every task of ``recipes.TASKS``.
        regimes: default ``recipes.sampling().regimes``.
        seeds: fine-tuning seeds of every cell (``recipes.finetune(profile).seeds``).
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
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise LaunchError(f"seeds must be non-negative integers, got {list(seeds)!r}")
    return [GridPoint(t, float(r), str(i), int(s)) for t in tasks for r in regimes for i in inits for s in seeds]


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


def _split_grid(grid: Iterable[GridPoint], root: Path, done_file: str | None, resubmit: Iterable[str] = ()
                ) -> tuple[dict[str, list[GridPoint]], dict[str, dict[str, "RunStatus"]]]:
    """(points to submit by task, settled runs by task), both in grid order. A run of
    ``resubmit`` (finished with other settings, to be moved aside first) is never settled."""
    points_all = list(grid)
    if len({p.run for p in points_all}) != len(points_all):
        raise LaunchError("the grid names a run twice")
    skip = settled_runs([p.run for p in points_all], root, done_file) if done_file else {}
    for run in resubmit:
        skip.pop(run, None)
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
              task_recipes: dict[str, Any] | None = None, after: Sequence[str] = (),
              resubmit: Iterable[str] = ()) -> list[GridPlan]:
    """The dry run of :func:`submit_grid`: per task, the runs it would submit and skip and the
    array's sbatch script. Nothing is submitted or written. ``resubmit``: finished runs the
    caller would move aside first (made with other settings), so they count as to submit."""
    clus = cluster(on)
    root = Path(results_root)
    todo, settled = _split_grid(grid, root, done_file, resubmit)
    out = []
    for task, points in todo.items():
        p = None
        if points:
            res = resources(task, profile, clus, name=f"{name}-{task}",
                            recipe=(task_recipes or {}).get(task))
            p = plan(task, profile, clus, folder=_array_folder(root, name, task).absolute(), res=res,
                     array=len(points), after=after)
        out.append(GridPlan(task, [pt.run for pt in points], settled[task], p, str(root.absolute())))
    return out


def submit_grid(make_job: Callable[[GridPoint, Path], Callable[[], Any]], grid: Iterable[GridPoint],
                *, profile: str, on: str | Cluster, results_root: str | Path = "results",
                name: str = "finetune", done_file: str | None = "metrics.json",
                task_recipes: dict[str, Any] | None = None, after: Sequence[str] = ()) -> dict[str, list[Any]]:
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
        after: job ids every array waits for (``afterok``; e.g. the pretraining that writes
            the trunk the runs start from).

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
                                 name=f"{name}-{task}", folder=_array_folder(root, name, task), after=after)
    return out
