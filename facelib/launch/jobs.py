"""Jobs that resume: :class:`ResumableJob` and its smallest real use, :class:`CountingJob`.

**Jobs resume.** A :class:`ResumableJob` keeps its progress in its run directory; its
``checkpoint()`` returns a ``DelayedSubmission`` of itself, so a time limit (USR2
``signal_delay_s`` before it) or a pre-emption requeues it and the next run continues.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .events import record_event


def _atomic_write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, sort_keys=True))
    os.replace(tmp, path)


class ResumableJob:
    """A picklable job that keeps its progress in ``run_dir`` and requeues itself.

    Subclasses implement :meth:`run`, which must continue from what ``run_dir`` holds. When
    SLURM signals a time limit or a pre-emption (USR2), submitit calls :meth:`checkpoint`,
    which returns a ``DelayedSubmission`` of this same job: the requeued job calls ``run`` again
    and picks up the last checkpoint written there. Starts, checkpoints, ends and failures are
    appended to ``run_dir/events.jsonl``.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = str(Path(run_dir).absolute())

    def __call__(self) -> Any:
        run_dir = Path(self.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        record_event(run_dir, "start")
        try:
            out = self.run()
        except Exception as exc:
            record_event(run_dir, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        record_event(run_dir, "done")
        return out

    def run(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit on USR2: the state is on disk already, requeue this same job."""
        from submitit.helpers import DelayedSubmission

        record_event(self.run_dir, "checkpoint")
        return DelayedSubmission(self, *args, **kwargs)


class CheckpointError(RuntimeError):
    """A run directory's checkpoint cannot be read."""


def _mix(value: int, step: int) -> int:
    """One step of a 64-bit linear congruential generator fed with the step number."""
    return (value * 6364136223846793005 + 1442695040888963407 + step) % 2**64


class CountingJob(ResumableJob):
    """Counts ``n_steps`` steps, checkpointing after each one, and returns the final state.

    Each step waits ``step_s`` seconds and mixes the step number into a 64-bit value, so the
    result depends on every step having run exactly once, in order: a run that is interrupted,
    requeued and resumed returns the same value as one that was not. The smallest real use of
    :class:`ResumableJob`, and what the requeue tests submit.
    """

    def __init__(self, run_dir: str | Path, n_steps: int, step_s: float = 0.0, seed: int = 0) -> None:
        super().__init__(run_dir)
        if n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps}")
        if step_s < 0:
            raise ValueError(f"step_s must be >= 0, got {step_s}")
        self.n_steps, self.step_s, self.seed = n_steps, step_s, seed

    @property
    def state_path(self) -> Path:
        return Path(self.run_dir) / "state.json"

    def _load_state(self) -> dict[str, int]:
        path = self.state_path
        if not path.exists():
            return {"step": 0, "value": self.seed}
        try:
            state = json.loads(path.read_text())
            step, value = int(state["step"]), int(state["value"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{path}: corrupt checkpoint ({type(exc).__name__}: {exc})") from exc
        if not 0 <= step <= self.n_steps:
            raise CheckpointError(f"{path}: step {step} is outside 0..{self.n_steps}")
        return {"step": step, "value": value}

    def run(self) -> dict[str, int]:
        state = self._load_state()
        record_event(self.run_dir, "resume" if state["step"] else "begin", step=state["step"])
        value = state["value"]
        for step in range(state["step"], self.n_steps):
            if self.step_s:
                time.sleep(self.step_s)
            value = _mix(value, step)
            _atomic_write_json(self.state_path, {"step": step + 1, "value": value})
        return {"steps": self.n_steps, "value": value}
