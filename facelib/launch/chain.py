"""A chain of submitted steps: what each step submitted, what it waits for, and what became of it.

A step is a group of jobs (one job, or a job array) that waits, through SLURM ``afterok``
dependencies, for the jobs of the steps before it; a job that fails makes SLURM cancel every
job waiting on it (``--kill-on-invalid-dep=yes``, :func:`facelib.launch.submit`). Each
submission of a chain appends one line per step to ``<results>/pipeline.jsonl``;
:func:`chain_status` reads the latest chain back with the scheduler's states and names, for a
step that did not complete, the job that failed first and its log.

Used by ``facelib pipeline`` (:mod:`facelib.pipeline`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .registry import _now
from .states import ACTIVE_STATES, slurm_states

__all__ = ["CHAIN_LOG", "FAILED_STATES", "Step", "StepStatus", "record_chain", "latest_chain", "chain_status",
           "describe_chain"]

CHAIN_LOG = "pipeline.jsonl"
#: states of a job that ended without doing its work (CANCELLED is told apart: see chain_status)
FAILED_STATES = {"FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "PREEMPTED"}


@dataclass
class Step:
    """One step of a submitted chain.

    Attributes:
        name: e.g. ``preprocess``, ``pretrain``, ``finetune-landmarks``, ``results-page``.
        after: names of the steps it waits for.
        jobs: ids of the jobs it submitted now (array elements as ``<id>_<i>``).
        logs: ``{job id: its stderr log}``.
        waits: job ids the steps after it must wait for (submitted now, or still queued from an
            earlier submission); empty when the step's work is done.
        note: what was done: submitted, skipped (finished), still queued, ran here.
        executor: the cluster profile's executor.
    """

    name: str
    after: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)
    waits: list[str] = field(default_factory=list)
    note: str = ""
    executor: str = "slurm"


def record_chain(results_root: str | Path, steps: list[Step], chain_id: str | None = None) -> str:
    """Append the steps of one submission to ``<results_root>/pipeline.jsonl``; returns its id."""
    root = Path(results_root)
    root.mkdir(parents=True, exist_ok=True)
    chain_id = chain_id or _now()
    lines = "".join(json.dumps({"chain": chain_id, **asdict(s)}, sort_keys=True) + "\n" for s in steps)
    fd = os.open(root / CHAIN_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, lines.encode())
    finally:
        os.close(fd)
    return chain_id


def latest_chain(results_root: str | Path) -> list[Step]:
    """The steps of the latest submission recorded under ``results_root`` (``[]`` if none)."""
    path = Path(results_root) / CHAIN_LOG
    if not path.exists():
        return []
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not recs:
        return []
    last = recs[-1]["chain"]
    return [Step(**{k: v for k, v in r.items() if k != "chain"}) for r in recs if r["chain"] == last]


@dataclass
class StepStatus:
    """What became of a recorded step.

    Attributes:
        state: ``COMPLETED``, ``ACTIVE`` (queued or running), ``FAILED`` (one of its jobs
            failed), ``STOPPED`` (cancelled because a step it waits for failed), ``CANCELLED``,
            ``SKIPPED`` (nothing to submit) or ``UNKNOWN``.
        job: the job that failed (FAILED) or, for STOPPED, the failed job upstream.
        log: that job's stderr log; ``cause``: the failed step upstream (STOPPED).
        last_line: the last line of that log (usually the exception).
    """

    step: Step
    state: str
    job: str = ""
    log: str = ""
    cause: str = ""
    last_line: str = ""
    states: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        s = self.step
        head = f"{s.name:<22} {self.state:<9}"
        if self.state == "SKIPPED":
            return f"{head} {s.note}"
        if s.executor != "slurm":
            return f"{head} ran in the submitting command ({s.executor} executor): {s.note}"
        jobs = _ranges(s.jobs)
        if self.state == "FAILED":
            return (f"{head} job {self.job} failed; log: {self.log}"
                    + (f"\n{'':<33}{self.last_line}" if self.last_line else ""))
        if self.state == "STOPPED":
            return (f"{head} job(s) {jobs} cancelled by SLURM: the step {self.cause!r} they wait for failed "
                    f"(job {self.job}; log: {self.log})")
        counts: dict[str, int] = {}
        for st in self.states.values():
            counts[st] = counts.get(st, 0) + 1
        return f"{head} job(s) {jobs}: " + ", ".join(f"{n} {st}" for st, n in sorted(counts.items()))


def _ranges(ids: list[str]) -> str:
    """``12_0, 12_1, 12_2`` -> ``12_[0-2]``; single ids unchanged."""
    arrays: dict[str, list[int]] = {}
    singles = []
    for j in ids:
        base, sep, idx = j.partition("_")
        if sep and idx.isdigit():
            arrays.setdefault(base, []).append(int(idx))
        else:
            singles.append(j)
    out = list(singles)
    for base, idxs in arrays.items():
        idxs.sort()
        out.append(f"{base}_[{idxs[0]}-{idxs[-1]}]" if len(idxs) > 1 else f"{base}_{idxs[0]}")
    return ", ".join(out)


def _last_line(path: str) -> str:
    try:
        lines = [ln.strip() for ln in Path(path).read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def chain_status(results_root: str | Path, steps: list[Step] | None = None) -> list[StepStatus]:
    """The scheduler's view of the latest chain under ``results_root`` (one sacct/squeue call).

    A step whose jobs were cancelled while a step it waits for (directly or further up) failed is
    ``STOPPED`` and names that failure: the first failed job of the first failed step upstream,
    and its log.
    """
    steps = latest_chain(results_root) if steps is None else steps
    states = slurm_states([j for s in steps if s.executor == "slurm" for j in s.jobs])
    by_name: dict[str, StepStatus] = {}
    out = []
    for s in steps:
        st = {j: states.get(j, "UNKNOWN").split(" ")[0] for j in s.jobs}
        if not s.jobs:
            status = StepStatus(s, "SKIPPED")
        elif s.executor != "slurm":
            status = StepStatus(s, "COMPLETED" if "ran here" in s.note else "UNKNOWN", states=st)
        else:
            failed = [j for j, v in st.items() if v in FAILED_STATES]
            if failed:
                j = failed[0]
                status = StepStatus(s, "FAILED", j, s.logs.get(j, ""), last_line=_last_line(s.logs.get(j, "")))
            elif any(v in ACTIVE_STATES for v in st.values()):
                status = StepStatus(s, "ACTIVE")
            elif all(v == "COMPLETED" for v in st.values()):
                status = StepStatus(s, "COMPLETED")
            elif any(v == "CANCELLED" for v in st.values()):
                cause = _first_failure(s, by_name)
                status = (StepStatus(s, "STOPPED", cause.job, cause.log, cause.step.name) if cause
                          else StepStatus(s, "CANCELLED", next(j for j, v in st.items() if v == "CANCELLED"),
                                          s.logs.get(next(j for j, v in st.items() if v == "CANCELLED"), "")))
            else:
                status = StepStatus(s, "UNKNOWN")
            status.states = st
        by_name[s.name] = status
        out.append(status)
    return out


def _first_failure(step: Step, by_name: dict[str, StepStatus]) -> StepStatus | None:
    """The FAILED step upstream of ``step`` (following STOPPED steps up), if any."""
    for name in step.after:
        up = by_name.get(name)
        if up is None:
            continue
        if up.state == "FAILED":
            return up
        if up.state == "STOPPED":
            return StepStatus(Step(up.cause), "FAILED", up.job, up.log)
    return None


def describe_chain(statuses: list[StepStatus]) -> str:
    """One line per step (see :meth:`StepStatus.describe`)."""
    return "\n".join(s.describe() for s in statuses)
