"""Waiting for a submitted job with a deadline, and interrupting one as a time limit does.

**Nothing waits forever.** :func:`wait` has a deadline and reports a job that ended without a
result (cancelled, killed, out of memory) instead of polling it for ever.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from .errors import JobEndedWithoutResult, JobTimeout
from .states import TERMINAL_STATES, result_outcome, slurm_states


def _tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return f"(no {path.name})"


def _has_result(job: Any) -> bool:
    return Path(job.paths.result_pickle).exists()


def _failed_task(job: Any) -> Any:
    """The first task of a multi-task job whose result pickle records an exception, or None."""
    if job.num_tasks <= 1:
        return None
    for k in range(job.num_tasks):
        task = job.task(k)
        path = Path(task.paths.result_pickle)
        if path.exists() and result_outcome(path) == "error":  # None: unreadable, or being written
            return task
    return None


def _run_debug(job: Any) -> Any:
    """Run a debug job now, in this process, under its submission-time environment.

    ``DebugJob.result()`` itself opens ``pdb.post_mortem()`` when the job raises, which would
    hang a notebook or a test waiting on stdin; here the exception simply propagates.
    """
    job._check_not_cancelled()
    submission = job._submission
    if submission.done():
        return submission._result
    backup = dict(os.environ)
    os.environ.clear()
    os.environ.update(job.environ)
    try:
        return submission.result()
    finally:
        os.environ.clear()
        os.environ.update(backup)


def wait(job: Any, timeout_s: float, poll_s: float = 1.0) -> Any:
    """Wait at most ``timeout_s`` for ``job`` and return its result (a list for multi-task jobs).

    Raises:
        JobTimeout: not finished in time; the message gives the state and the log path.
        JobEndedWithoutResult: the scheduler says it ended (cancelled, killed, out of memory,
            time limit without a checkpoint) and it wrote no result.
        submitit.core.utils.FailedJobError: the job raised; the message holds its traceback.
    """
    from submitit.local.debug import DebugJob

    if isinstance(job, DebugJob):
        return _run_debug(job)
    from submitit.slurm.slurm import SlurmJob

    is_slurm = isinstance(job, SlurmJob)
    deadline = time.monotonic() + timeout_s
    state = ""
    while True:
        if job.done(force_check=True):
            break
        if is_slurm:
            # Ask sacct and, while accounting lags, the controller itself (squeue -t all).
            state = slurm_states([str(job.job_id)]).get(str(job.job_id), "")
            if state.split(" ")[0] in TERMINAL_STATES:
                break
        failed = _failed_task(job)
        if failed is not None:  # one task raised: its traceback now, not at the time limit
            job.cancel(check=False)
            failed.result()
        if time.monotonic() > deadline:
            raise JobTimeout(
                f"job {job.job_id} not finished after {timeout_s:.0f} s (state {job.state}); "
                f"log: {job.paths.stderr}"
            )
        time.sleep(poll_s)
    if not _has_result(job):
        # The pickle is written before the step exits; allow a shared filesystem a moment.
        grace = time.monotonic() + min(5.0, max(deadline - time.monotonic(), 0.0))
        while not _has_result(job) and time.monotonic() < grace:
            time.sleep(0.2)
    if not _has_result(job):
        raise JobEndedWithoutResult(
            f"job {job.job_id} ended in state {state or job.state} without a result; "
            f"stderr ({job.paths.stderr}):\n{_tail(Path(job.paths.stderr))}"
        )
    job._results_timeout_s = max(min(15.0, deadline - time.monotonic()), 1.0)
    return job.results() if job.num_tasks > 1 else job.result()


def interrupt(job: Any) -> None:
    """Send USR2 to a running SLURM job, as SLURM does ``signal_delay_s`` before a time limit.

    The job's submitit handler calls ``checkpoint()``, requeues the job and exits; the requeued
    job resumes from its run directory. Only USR2 is sent: submitit's own ``_interrupt()`` sends
    SIGTERM too, and when TERM arrives second it kills the ``scontrol requeue`` of the handler.
    """
    subprocess.run(["scancel", "--signal=USR2", str(job.job_id)], check=True,
                   capture_output=True, text=True)
