"""Atomic checkpoints and random-number-generator state, for runs that resume exactly.

:func:`save` writes to a temporary file in the target's directory, flushes it to disk and
renames it over the target (``os.replace``): a run killed while saving leaves the previous
checkpoint intact. :func:`rng_state` / :func:`set_rng_state` capture every generator a training
run draws from (Python, NumPy's global one, torch CPU and CUDA).

Used by ``facelib.swav.train`` (``notebooks/03_swav_pretraining.py``) and the fine-tuning jobs.
"""

from __future__ import annotations

import os
import pickle
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["CheckpointError", "save", "load", "rng_state", "set_rng_state", "atomic_write_text"]


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated or not a checkpoint."""


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (temp file in the same directory + rename).

    Returns:
        The path written. The directory is created if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """Write ``text`` to ``path`` atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def load(path: str | os.PathLike[str], map_location: Any = "cpu", trusted: bool = True) -> Any:
    """Load a checkpoint written by :func:`save` (or any ``torch.save`` file).

    Args:
        path: the file.
        map_location: where tensors go (default CPU).
        trusted: allow arbitrary pickled objects (our own checkpoints hold NumPy RNG state).
            Use ``False`` for files from elsewhere: only tensors and plain containers load.

    Raises:
        CheckpointError: the file is missing, empty, truncated or not a torch checkpoint; the
            message names the file and the reason.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    try:
        return torch.load(path, map_location=map_location, weights_only=not trusted)
    except pickle.UnpicklingError as e:
        if not trusted:
            raise CheckpointError(
                f"{path}: holds objects other than tensors ({e}); load it with trusted=True "
                "only if you trust its source") from e
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({e})") from e
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable torch checkpoint (truncated or corrupt?): {e}") from e


def rng_state() -> dict[str, Any]:
    """Every random generator's state: ``python``, ``numpy`` (global), ``torch`` and ``cuda``."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured.

    The generator states are byte tensors that must be on the CPU; a checkpoint loaded with
    ``map_location="cuda"`` (how a GPU run resumes) has moved them, so they are moved back.
    """
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(torch.as_tensor(state["torch"]).cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.as_tensor(s).cpu() for s in state["cuda"]])
