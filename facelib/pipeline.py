"""``facelib pipeline``: the paper's steps submitted as one chain of SLURM jobs.

::

    preprocess (job array, one element per part of the photos) -> preprocess-merge
      -> pretrain (SwAV on the merged shards)
        -> finetune-<task> (one job array per task: regimes x {random, ours, ...})
          -> results-page (notebooks/09_results.py executed on the chain's results)

Each step waits for the steps before it through SLURM ``afterok`` dependencies; a job that fails
makes SLURM cancel every job waiting on it, and ``facelib pipeline --status`` (or ``--wait``)
names the failed job and its log (:mod:`facelib.launch.chain`). Every step skips what is done:
finished or still queued preprocessing parts (:mod:`facelib.faces.array`), a finished
pretraining (its ``trunk.pth``), finished or queued fine-tuning runs (``metrics.json``,
:func:`facelib.tasks.grid.submit_grid`), and a results page newer than every run's metrics.
``--dry-run`` prints every step's sbatch script and the dependency graph and submits nothing.

On a cluster profile whose executor is not slurm (``debug``: in this process; ``local``:
processes here) the steps run one after the other, this command waiting for each.

Defaults: the photos and the shards folder are page 01's ``image_root`` and ``out_dir`` in
``notebooks/profiles/<profile>.yaml``; recipes are the profile's (``--set`` overrides them:
``pretrain.KEY``, ``<task>.KEY``, ``tasks.KEY`` for every task, ``data.KEY`` /
``<task>.data.KEY`` for the fine-tuning data of :class:`facelib.tasks.finetune.DataSpec`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from facelib import recipes

__all__ = ["PipelineError", "Chain", "ResultsPageJob", "submit_chain", "wait_chain", "add_cli"]

PAGE = "09_results"


class PipelineError(ValueError):
    """A bad chain request (the message names the option and the reason)."""


@dataclass
class Chain:
    """What ``facelib pipeline`` runs (see the module doc).

    Attributes:
        profile: recipe profile of every step.
        cluster: cluster profile name (``slurm/clusters.yaml``) or :class:`facelib.launch.Cluster`.
        images: the photos to preprocess (a folder or a file list).
        shards: the preprocessing output folder (the pretraining reads its merged manifest).
        results: results root: ``swav_<profile>/`` (pretraining), ``<task>/<init>/<pct>pct/``
            (fine-tuning), ``pages/09_results.ipynb``, ``jobs.jsonl``, ``pipeline.jsonl``.
        tasks, regimes: the fine-tuning grid (default: every task, every regime of supplement 1.3).
        inits: initialisations besides ``random`` and ``ours`` (this chain's trunk): name -> weights.
        pretrain_overrides, task_overrides: recipe overrides.
        data: fine-tuning data per task (:class:`facelib.tasks.finetune.DataSpec`).
        part_size, shard_size: of the preprocessing (default part size: ``Launch.preprocess_part_files``).
    """

    profile: str
    cluster: Any
    images: str
    shards: str
    results: str = "results"
    tasks: list[str] = field(default_factory=lambda: list(recipes.TASKS))
    regimes: list[float] = field(default_factory=lambda: list(recipes.sampling().regimes))
    inits: dict[str, str | None] = field(default_factory=dict)
    pretrain_overrides: dict[str, Any] = field(default_factory=dict)
    task_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    part_size: int | None = None
    shard_size: int = 1000

    @property
    def pretrain_dir(self) -> Path:
        return Path(self.results) / f"swav_{self.profile}"

    @property
    def trunk(self) -> Path:
        return self.pretrain_dir / "trunk.pth"

    @property
    def page_output(self) -> Path:
        return Path(self.results) / "pages" / f"{PAGE}.ipynb"


class ResultsPageJob:
    """Execute ``notebooks/09_results.py`` on the chain's results into ``output`` (papermill).

    The page gathers every run's ``metrics.json`` under ``results_dir`` (:func:`facelib.results.collect`).
    """

    def __init__(self, repo_root: str | Path, profile: str, results_dir: str | Path, output: str | Path) -> None:
        self.repo_root, self.profile = str(Path(repo_root).absolute()), profile
        self.results_dir, self.output = str(Path(results_dir).absolute()), str(Path(output).absolute())

    def __call__(self) -> dict[str, Any]:
        from facelib import book, results

        root = Path(self.repo_root)
        page = book.Page(PAGE, root / book.NOTEBOOKS / f"{PAGE}.py", Path(self.output))
        params = book.resolve_parameters(page, self.profile, book.load_profile(root, self.profile).get(PAGE, {}),
                                         {"results_dir": self.results_dir})
        seconds = book.execute_page(page, params, root)
        return {"page": self.output, "runs": len(results.collect(self.results_dir)), "seconds": round(seconds, 1)}


def _repo_root() -> Path:
    from facelib import book

    return book.find_root(Path(__file__).resolve().parents[1])


# --------------------------------------------------------------------------------------------
# The steps
# --------------------------------------------------------------------------------------------
def _ids(jobs: Sequence[Any]) -> list[str]:
    return [str(j.job_id) for j in jobs]


def _logs(jobs: Sequence[Any]) -> dict[str, str]:
    return {str(j.job_id): str(j.paths.stderr) for j in jobs}


def _array_ids(jobs: Sequence[Any]) -> list[str]:
    """What a dependant waits for: the array id of array elements, the job id otherwise."""
    return sorted({str(j.job_id).split("_")[0] for j in jobs})


def _placeholder(name: str) -> list[str]:
    return [f"<{name}>"]


def _step_preprocess(chain: Chain, clus: Any, dry_run: bool, log: Callable[[str], None]) -> list[Any]:
    from facelib.faces import array
    from facelib.launch.chain import Step

    slurm = clus.executor == "slurm"
    try:
        sub = array.submit(chain.images, chain.shards, on=clus, profile=chain.profile, part_size=chain.part_size,
                           options={"shard_size": chain.shard_size}, dry_run=dry_run, log=log)
    except FileNotFoundError as e:
        if not dry_run:
            raise
        launch = _launch()
        folder = Path(chain.shards, "array", "submitit", "%j").absolute()
        log(f"preprocess: {e} (not readable here): the parts are counted at submission, one job-array "
            f"element per {chain.part_size or recipes.launch(chain.profile).preprocess_part_files} photos "
            "(the script gets an --array line); the element's and the merge job's scripts:")
        log(launch.plan("preprocess", chain.profile, clus, folder=folder,
                        res=launch.preprocess_resources(chain.profile, clus)).summary())
        log(launch.plan("preprocess-merge", chain.profile, clus, folder=folder,
                        res=launch.cpu_job_resources("facelib-preprocess-merge", chain.profile, clus),
                        after=["<the array above>"] if slurm else ()).summary())
        return [Step("preprocess", note="would submit a job array (one element per part)", executor=clus.executor),
                Step("preprocess-merge", ["preprocess"], waits=_placeholder("preprocess-merge"),
                     note="would submit the merge job", executor=clus.executor)]
    if dry_run:
        pending = bool(sub.submit_parts or sub.active or not array.merged(chain.shards))
        return [Step("preprocess", executor=clus.executor,
                     note=f"would submit {len(sub.submit_parts)} of {len(sub.plan.parts)} part(s) as a job array"),
                Step("preprocess-merge", ["preprocess"], executor=clus.executor,
                     note="would submit the merge job" if pending else "merged already",
                     waits=_placeholder("preprocess-merge") if pending and slurm else [])]
    n = len(sub.plan.parts)
    arr = Step("preprocess", jobs=_ids(sub.jobs), logs=_logs(sub.jobs), executor=clus.executor,
               note=(f"{len(sub.jobs)} of {n} part(s) submitted" if sub.jobs else
                     f"all {n} part(s) finished or queued"))
    merge_jobs = [sub.merge_job] if sub.merge_job is not None else []
    merge = Step("preprocess-merge", ["preprocess"], jobs=_ids(merge_jobs), logs=_logs(merge_jobs),
                 waits=sub.wait_for, executor=clus.executor,
                 note=("merged here" if sub.merged_now is not None else
                       f"merge job {sub.active_merge} still queued" if sub.active_merge else
                       "merged already" if not merge_jobs else "submitted"))
    if not slurm:
        arr.note += ", ran here"
    return [arr, merge]


def _launch() -> Any:
    from facelib import launch

    return launch


def _step_pretrain(chain: Chain, clus: Any, after: list[str], dry_run: bool, log: Callable[[str], None]) -> Any:
    from facelib.launch.chain import Step
    from facelib.swav.train import DataSpec, PretrainJob

    launch = _launch()
    recipe = recipes.pretrain(chain.profile, **chain.pretrain_overrides)
    res = launch.resources("pretrain", chain.profile, clus, recipe=recipe)
    run = chain.pretrain_dir.name
    step = Step("pretrain", ["preprocess-merge"], executor=clus.executor)
    if chain.trunk.is_file():
        step.note = f"finished ({chain.trunk} exists): not submitted"
        log(f"pretrain: {step.note}")
        return step
    active = launch.active_runs([run], chain.results)
    if run in active:
        step.waits = [active[run].job_id]
        step.note = f"job {active[run].job_id} still queued or running: not submitted again"
        log(f"pretrain: {step.note}")
        return step
    folder = chain.pretrain_dir / "submitit" / "%j"
    if dry_run:
        log(launch.plan("pretrain", chain.profile, clus, folder=folder.absolute(), res=res,
                        after=after if clus.executor == "slurm" else ()).summary())
        step.waits = _placeholder("pretrain")
        step.note = f"would submit one job of {res.num_gpus} GPU(s)"
        return step
    job = PretrainJob(recipe=recipe, out_dir=str(chain.pretrain_dir.absolute()),
                      data=DataSpec(kind="shards", manifest=str(Path(chain.shards, "manifest.parquet").absolute()),
                                    root=str(Path(chain.shards).absolute())),
                      num_workers=max(0, res.cpus_per_task - 1), progress=False)
    submitted = launch.submit(job, run=run, on=clus, res=res, results_root=chain.results, folder=folder,
                              results_dir=chain.pretrain_dir, after=after if clus.executor == "slurm" else ())
    step.jobs, step.logs, step.waits = _ids([submitted]), _logs([submitted]), _ids([submitted])
    step.note = f"submitted as job {submitted.job_id}; log {submitted.paths.stderr}"
    log(f"pretrain: {step.note}")
    if clus.executor != "slurm":
        _wait_here(submitted, step.name)
        step.note += ", ran here"
    return step


def _wait_here(job: Any, step: str) -> Any:
    """Wait for a job of a non-slurm profile; its failure is one line naming the step and the log."""
    from submitit.core.utils import FailedJobError

    launch = _launch()
    try:
        return launch.wait(job, float("inf"))
    except (FailedJobError, launch.JobEndedWithoutResult) as e:
        last = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        raise RuntimeError(f"step {step!r} failed: job {job.job_id} ({last[-1][:200] if last else 'no message'}); "
                           f"log: {job.paths.stderr}") from None


def _step_grid(chain: Chain, task: str, clus: Any, after: list[str], dry_run: bool,
               log: Callable[[str], None]) -> Any:
    from facelib.launch.chain import Step
    from facelib.tasks import grid as task_grid
    from facelib.tasks.finetune import DataSpec

    launch = _launch()
    inits = {"random": None, "ours": str(chain.trunk.absolute()), **chain.inits}
    step = Step(f"finetune-{task}", ["pretrain"], executor=clus.executor)
    slurm_after = after if clus.executor == "slurm" else ()
    kw = dict(profile=chain.profile, on=clus, data=chain.data.get(task, DataSpec()),
              overrides=chain.task_overrides.get(task, {}), stale="rerun", after=slurm_after)
    plans: list[Any] = []
    jobs = task_grid.submit_grid(task, inits, chain.regimes, chain.results, dry_run=dry_run,
                                 dry_run_plans=plans, **kw)
    seeds = task_grid.grid_seeds(chain.profile, kw["overrides"])  # submit_grid's: every cell's seeds
    runs = [task_grid.run_name(task, i, r, s) for r in chain.regimes for i in inits for s in seeds]
    if dry_run:
        todo = sum(len(gp.runs) for gp in plans)  # stale runs it would move aside count as to submit
        step.waits = _placeholder(step.name) if todo else []
        step.note = f"would submit {todo} of {len(runs)} run(s) as a job array"
        return step
    mine = set(_ids(jobs))
    earlier = [s.job_id for s in launch.active_runs(runs, chain.results).values() if s.job_id not in mine]
    step.jobs, step.logs = _ids(jobs), _logs(jobs)
    step.waits = _array_ids(jobs) + sorted(set(earlier))
    step.note = (f"{len(jobs)} run(s) submitted" if jobs else "every run finished or queued") + (
        f", {len(earlier)} still queued from an earlier submission" if earlier else "")
    if clus.executor != "slurm":
        for j in jobs:
            _wait_here(j, step.name)
        step.note += ", ran here"
    return step


def _page_is_current(chain: Chain) -> bool:
    out = chain.page_output
    if not out.is_file():
        return False
    newest = max((p.stat().st_mtime for p in Path(chain.results).rglob("metrics.json")), default=0.0)
    return out.stat().st_mtime >= newest


def _step_page(chain: Chain, clus: Any, after: list[str], upstream_submitted: bool, dry_run: bool,
               log: Callable[[str], None]) -> Any:
    from facelib.launch.chain import Step

    launch = _launch()
    step = Step("results-page", [f"finetune-{t}" for t in chain.tasks] or ["pretrain"], executor=clus.executor)
    if not upstream_submitted and not after and _page_is_current(chain):
        step.note = f"{chain.page_output} is newer than every run's metrics: not submitted"
        log(f"results-page: {step.note}")
        return step
    res = launch.cpu_job_resources("facelib-results-page", chain.profile, clus)
    folder = Path(chain.results) / "pages" / "submitit" / "%j"
    slurm_after = after if clus.executor == "slurm" else ()
    if dry_run:
        log(launch.plan("results-page", chain.profile, clus, folder=folder.absolute(), res=res,
                        after=slurm_after).summary())
        step.note = f"would submit one CPU job executing {PAGE}"
        return step
    job = ResultsPageJob(_repo_root(), chain.profile, chain.results, chain.page_output)
    submitted = launch.submit(job, run="pages/results", on=clus, res=res, results_root=chain.results,
                              folder=folder, results_dir=Path(chain.results) / "pages", after=slurm_after)
    step.jobs, step.logs, step.waits = _ids([submitted]), _logs([submitted]), _ids([submitted])
    step.note = f"submitted as job {submitted.job_id}: executes {PAGE} into {chain.page_output}"
    log(f"results-page: {step.note}")
    if clus.executor != "slurm":
        _wait_here(submitted, step.name)
        step.note += ", ran here"
    return step


def submit_chain(chain: Chain, dry_run: bool = False, log: Callable[[str], None] = print) -> list[Any]:
    """Submit (or, with ``dry_run``, print) every step of ``chain``; returns the steps.

    The submission is recorded in ``<results>/pipeline.jsonl`` (not in a dry run).
    """
    from facelib.launch.chain import record_chain

    launch = _launch()
    clus = launch.cluster(chain.cluster)
    for t in chain.tasks:
        if t not in recipes.TASKS:
            raise PipelineError(f"unknown task {t!r}; choose from {', '.join(recipes.TASKS)}")
    if not chain.regimes or any(not 0 < r <= 1 for r in chain.regimes):
        raise PipelineError(f"--regimes must be fractions in (0, 1], got {chain.regimes}")
    recipes.pretrain(chain.profile, **chain.pretrain_overrides)  # bad overrides fail before anything runs
    from facelib.tasks.finetune import make_task
    for t in chain.tasks:  # task recipe fields and the shared Finetune ones (e.g. seeds)
        make_task(t, chain.profile, chain.task_overrides.get(t, {}), num_classes=2)
    head = (f"pipeline ({chain.profile} profile) on cluster {clus.name!r} [{clus.executor}]"
            f"{' -- dry run: nothing is submitted or written' if dry_run else ''}\n"
            f"  photos {chain.images} -> shards {chain.shards}; results in {Path(chain.results).absolute()}")
    log(head)
    log("\n== preprocess")
    steps = _step_preprocess(chain, clus, dry_run, log)
    log("\n== pretrain")
    steps.append(_step_pretrain(chain, clus, steps[-1].waits, dry_run, log))
    pre = steps[-1].waits
    grids = []
    for task in chain.tasks:
        log(f"\n== finetune-{task}")
        grids.append(_step_grid(chain, task, clus, pre, dry_run, log))
    steps += grids
    log("\n== results-page")
    upstream = sorted({w for s in (grids or steps[-1:]) for w in s.waits})
    submitted = any(s.jobs for s in steps)
    steps.append(_step_page(chain, clus, upstream, submitted, dry_run, log))
    log("\n" + dependency_graph(steps, clus.executor == "slurm"))
    if not dry_run:
        record_chain(chain.results, steps)
        log(f"recorded in {Path(chain.results) / 'pipeline.jsonl'}; `facelib pipeline --status "
            f"--results {chain.results}` follows it")
    return steps


def dependency_graph(steps: Sequence[Any], slurm: bool) -> str:
    """The steps and what each waits for (``afterok``), one line each."""
    how = ("afterok: a step starts when every job it waits for has COMPLETED; a job that fails "
           "cancels every step after it" if slurm else "the steps ran one after the other in this command")
    lines = [f"dependency graph ({how}):"]
    for s in steps:
        after = ", ".join(s.after) or "-"
        lines.append(f"  {s.name:<21} after {after}")
        lines.append(f"  {'':<21} {s.note or 'nothing to submit'}")
    return "\n".join(lines)


def wait_chain(results: str | Path, timeout_s: float, poll_s: float = 5.0) -> list[Any]:
    """Wait until every job of the latest chain has ended (at most ``timeout_s``); the statuses."""
    from facelib.launch.chain import chain_status

    deadline = time.monotonic() + timeout_s
    while True:
        statuses = chain_status(results)
        if all(s.state != "ACTIVE" for s in statuses) or time.monotonic() > deadline:
            return statuses
        time.sleep(poll_s)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def _sets(items: Sequence[str] | None, profile: str, tasks: Sequence[str]
          ) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """``--set SECTION.KEY=VALUE`` -> (pretrain overrides, task overrides, data fields by task)."""
    from facelib.cli import key_values
    from facelib.tasks.finetune import DataSpec

    data_fields = {f.name for f in dataclasses.fields(DataSpec)}
    pre: dict[str, Any] = {}
    task: dict[str, dict[str, Any]] = {t: {} for t in tasks}
    data: dict[str, dict[str, Any]] = {t: {} for t in tasks}
    for key, value in key_values(items, "--set", PipelineError).items():
        section, _, rest = key.partition(".")
        targets = list(tasks) if section in ("tasks", "data") else [section]
        if section == "data":
            rest = f"data.{rest}"
        if not rest:
            raise PipelineError(f"--set {key}=...: say which step, e.g. pretrain.epochs=1, landmarks.lr=0.001, "
                                "tasks.epochs=1 (every task), data.n_train=100 (every task's data)")
        if section == "pretrain":
            pre[rest] = value
        elif section in recipes.TASKS or section in ("tasks", "data"):
            for t in targets:
                if t not in task:
                    continue  # a task outside --tasks
                if rest.startswith("data."):
                    name = rest[len("data."):]
                    if name not in data_fields:
                        raise PipelineError(f"--set {key}: DataSpec has no field {name!r}; fields: "
                                            f"{', '.join(sorted(data_fields))}")
                    data[t][name] = value
                else:
                    task[t][rest] = value
        else:
            raise PipelineError(f"--set {key}: unknown step {section!r}; use pretrain, tasks, data or a task "
                                f"({', '.join(recipes.TASKS)})")
    return pre, task, data


def _default_paths(profile: str) -> dict[str, Any]:
    from facelib import book

    try:
        return book.load_profile(_repo_root(), profile).get("01_data_curation", {})
    except book.BookError:
        return {}


def chain_from_args(args: argparse.Namespace) -> Chain:
    from facelib import launch
    from facelib.tasks import backbone as B
    from facelib.tasks.finetune import DataSpec

    page01 = _default_paths(args.profile)
    images = args.images or page01.get("image_root")
    shards = args.shards or page01.get("out_dir")
    if not images or not shards:
        raise PipelineError(f"say where the photos are and where the shards go: --images DIR --shards DIR "
                            f"(notebooks/profiles/{args.profile}.yaml gives no 01_data_curation image_root/out_dir)")
    tasks = args.tasks or list(recipes.TASKS)
    pre, task_over, data = _sets(args.set, args.profile, tasks)
    inits: dict[str, str | None] = {}
    for spec in args.init or ():
        name, sep, path = spec.partition("=")
        if name in ("random", "ours") or name not in B.INITS or not sep or not path:
            raise PipelineError(f"--init {spec!r}: give NAME=WEIGHTS_FILE for an initialisation besides "
                                f"random and ours (the chain's trunk): one of "
                                f"{', '.join(i for i in B.INITS if i not in ('random', 'ours'))}")
        inits[name] = path
    return Chain(profile=args.profile, cluster=launch.cluster(args.cluster, **launch._parse_sets(args.cluster_set)),
                 images=str(images), shards=str(shards), results=args.results, tasks=list(tasks),
                 regimes=list(args.regimes) if args.regimes else list(recipes.sampling().regimes), inits=inits,
                 pretrain_overrides=pre, task_overrides=task_over,
                 data={t: DataSpec(**d) for t, d in data.items()}, part_size=args.part_size,
                 shard_size=args.shard_size)


def _status(results: str, statuses: list[Any] | None = None) -> int:
    from facelib.launch.chain import chain_status, describe_chain

    statuses = chain_status(results) if statuses is None else statuses
    if not statuses:
        print(f"no chain recorded in {Path(results) / 'pipeline.jsonl'}")
        return 0
    print(describe_chain(statuses))
    bad = [s for s in statuses if s.state in ("FAILED", "STOPPED", "CANCELLED", "UNKNOWN")]
    if any(s.state == "FAILED" for s in statuses):
        failed = next(s for s in statuses if s.state == "FAILED")
        print(f"the chain stopped: step {failed.step.name!r} failed (job {failed.job}; log: {failed.log}); "
              "fix the cause and rerun the same `facelib pipeline` command: what is done is skipped")
    return 1 if bad else 0


def _cli(args: argparse.Namespace) -> int:
    from facelib.launch.errors import LaunchError

    try:
        if args.status:
            return _status(args.results)
        if not args.cluster:
            raise PipelineError("say where to run: --cluster NAME (a profile of slurm/clusters.yaml; "
                                "`facelib jobs clusters` lists them)")
        chain = chain_from_args(args)
        submit_chain(chain, dry_run=args.dry_run)
        if args.dry_run or args.wait is None:
            return 0
        statuses = wait_chain(chain.results, args.wait)
        if any(s.state == "ACTIVE" for s in statuses):
            print(f"not finished after {args.wait:.0f} s; `facelib pipeline --status --results {chain.results}` "
                  "follows it")
            _status(chain.results, statuses)
            return 1
        return _status(chain.results, statuses)
    except (ValueError, RuntimeError, OSError, LaunchError) as e:  # RecipeError, PipelineError: ValueError
        print(f"facelib pipeline: error: {e}", file=sys.stderr)
        return 2


def add_cli(subparsers: Any) -> None:
    """``facelib pipeline --profile paper --cluster NAME [--dry-run | --status]``."""
    p = subparsers.add_parser(
        "pipeline", help="the whole chain as SLURM jobs: preprocess -> pretrain -> 5 grids -> results page",
        description=__doc__.split("\n\n")[0] + ": preprocess (job array + merge) -> pretrain -> the five "
        "fine-tuning grids -> the results page, linked by afterok dependencies; each step skips what is "
        "done. --dry-run prints every sbatch script and the dependency graph; --status says what became "
        "of the latest chain and names a failed job and its log.",
        epilog="Exit status: 0 submitted (with --wait or --status: every step completed or skipped); "
        "1 a step failed or was stopped (--wait, --status) or --wait ran out; 2 a bad argument.")
    p.add_argument("--profile", choices=recipes.PROFILES, default="paper")
    p.add_argument("--cluster", default=None, help="cluster profile of slurm/clusters.yaml (e.g. v100x8)")
    p.add_argument("--cluster-set", action="append", metavar="KEY=VALUE", help="override a field of the cluster profile")
    p.add_argument("--images", default=None, help="photos to preprocess (default: page 01's image_root of the profile)")
    p.add_argument("--shards", default=None, help="preprocessing output folder (default: page 01's out_dir)")
    p.add_argument("--results", default="results", help="results root of the runs, the page and the records")
    p.add_argument("--tasks", nargs="+", default=None, choices=list(recipes.TASKS), metavar="TASK",
                   help=f"fine-tuning tasks (default all: {', '.join(recipes.TASKS)})")
    p.add_argument("--regimes", type=float, nargs="+", default=None, metavar="FRACTION",
                   help="data regimes of the grids (default: every regime of supplement 1.3)")
    p.add_argument("--init", action="append", metavar="NAME=PATH",
                   help="an initialisation besides random and ours (e.g. imagenet=/w/r50.pth); repeatable")
    p.add_argument("--part-size", type=int, default=None, help="photos per preprocessing element "
                   "(default recipes.Launch.preprocess_part_files)")
    p.add_argument("--shard-size", type=int, default=1000, help="crops per HDF5 shard")
    p.add_argument("--set", action="append", metavar="STEP.KEY=VALUE",
                   help="recipe override: pretrain.epochs=1, landmarks.lr=0.001, tasks.epochs=1 (every task), "
                        "data.n_train=100 or au.data.reader=disfa (fine-tuning data); repeatable")
    p.add_argument("--dry-run", action="store_true",
                   help="print every step's sbatch script and the dependency graph; submit and write nothing")
    p.add_argument("--status", action="store_true", help="what became of the latest chain under --results")
    p.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                   help="wait at most this long for the whole chain, then report it")
    p.set_defaults(func=_cli)
