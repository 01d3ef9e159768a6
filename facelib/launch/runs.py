"""Status of recorded runs (registry + scheduler state + result files), and submitting a run once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .allocation import Resources
from .clusters import Cluster, cluster
from .registry import job_records
from .states import ACTIVE_STATES, TERMINAL_STATES, _local_state, slurm_states
from .submission import submit


@dataclass
class RunStatus:
    """One run of the registry: where it ran, its scheduler state, where its results are."""

    run: str
    job_id: str
    cluster: str
    state: str
    results: str
    result_files: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.state.split()[0] in TERMINAL_STATES

    def __str__(self) -> str:
        where = f"job {self.job_id} on {self.cluster}" if self.job_id else "no job recorded"
        return f"{self.run}: {self.state} ({where}); results in {self.results}"


def status(results_root: str | Path = "results") -> list[RunStatus]:
    """Every recorded run with its current state (one sacct call for all SLURM jobs)."""
    recs = job_records(results_root)
    slurm_ids = [r["job_id"] for r in recs if r["executor"] == "slurm"]
    states = slurm_states(slurm_ids)
    out = []
    for r in recs:
        state = states.get(r["job_id"], "UNKNOWN") if r["executor"] == "slurm" else _local_state(r)
        res_dir = Path(r["results"])
        files = sorted(str(p.relative_to(res_dir)) for p in res_dir.rglob("*")
                       if p.is_file() and "submitit" not in p.relative_to(res_dir).parts
                       ) if res_dir.exists() else []
        out.append(RunStatus(r["run"], r["job_id"], r["cluster"], state, r["results"], files))
    return out


def active_runs(runs: Iterable[str], results_root: str | Path = "results") -> dict[str, RunStatus]:
    """The runs among ``runs`` whose latest job is queued or running (it will write its run
    directory: do not touch it)."""
    wanted = set(runs)
    return {s.run: s for s in status(results_root)
            if s.run in wanted and s.state.split()[0] in ACTIVE_STATES}


def settled_runs(runs: Iterable[str], results_root: str | Path = "results",
                 done_file: str = "metrics.json") -> dict[str, RunStatus]:
    """The runs among ``runs`` that need no submission: finished (``<run>/<done_file>`` exists)
    or queued/running. Runs that failed, were cancelled or never ran are left out."""
    root = Path(results_root)
    known = {s.run: s for s in status(root)}
    out: dict[str, RunStatus] = {}
    for run in runs:
        prev = known.get(run)
        if (root / run / done_file).exists():
            out[run] = RunStatus(run, prev.job_id if prev else "", prev.cluster if prev else "",
                                 "COMPLETED", str((root / run).absolute()), [done_file])
        elif prev is not None and prev.state.split()[0] in ACTIVE_STATES:
            out[run] = prev
    return out


def submit_once(fn: Callable[[], Any], *, run: str, on: str | Cluster, res: Resources,
                results_root: str | Path = "results", done_file: str = "metrics.json") -> RunStatus:
    """Submit run ``run`` unless it is finished or already queued; never blocks.

    For notebook pages in the paper profile: the first execution submits and prints the job id;
    a later one finds ``<results_root>/<run>/<done_file>`` and reports the run done, or finds
    the job still queued or running and does not submit it twice. A run whose job ended
    without its results (failed, cancelled) is submitted again.
    """
    root = Path(results_root)
    settled = settled_runs([run], root, done_file)
    if run in settled:
        return settled[run]
    job = submit(fn, run=run, on=on, res=res, results_root=root)
    return RunStatus(run, str(job.job_id), cluster(on).name, "SUBMITTED", str((root / run).absolute()))
