"""Atomic checkpoints that load without running code, and random-number-generator state.

:func:`save` writes to a temporary file in the target's directory, flushes it to disk and
renames it over the target (``os.replace``): a run killed while saving leaves the previous
checkpoint intact. :func:`rng_state` / :func:`set_rng_state` capture every generator a training
run draws from (Python, NumPy's global one, torch CPU and CUDA) as tensors and plain values.

:func:`load` reads with ``torch.load(weights_only=True)``: tensors, plain containers and
numbers, strings, and NumPy arrays of numbers (checkpoints of earlier facelib versions stored
NumPy's RNG state so). A pickle that asks for anything else (a class, a function: what makes a
crafted ``checkpoint.pth`` run code when it is unpickled) is refused with a
:class:`CheckpointError` that names the Python objects it asks for, found by reading the pickle
without executing it (:func:`pickle_globals`). Everything this project writes (checkpoints of
pretraining and fine-tuning, exported trunks) loads this way; so do the authors' released
models (plain state dicts) and torchvision's weights. Only ``trusted=True`` (a user's explicit
``--trusted``) unpickles arbitrary objects.

Used by ``facelib.swav.train`` (``notebooks/03_swav_pretraining.py``), the fine-tuning jobs
and every reader of weights files (``facelib.swav.model.read_state_dict``).
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import random
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facelib.errors import InputError

__all__ = ["CheckpointError", "save", "load", "pickle_globals", "resume_state", "rng_state",
           "set_rng_state", "atomic_write_text", "TRUSTED_HELP"]

#: The help of the ``--trusted`` option of the commands that read weights files.
TRUSTED_HELP = ("load checkpoints and weights files even if they hold pickled Python objects "
                "besides tensors. RISK: unpickling such a file runs whatever code it names, with "
                "your permissions; use it only for files you made yourself. Without it those files "
                "are refused and nothing in them runs")


class CheckpointError(InputError, RuntimeError):
    """A checkpoint file is missing, truncated, not a checkpoint, or holds objects it may not load."""


def _numpy_array_globals() -> list[Any]:
    """What unpickling a NumPy array of numbers needs: the array and dtype constructors (a
    ``numpy.ndarray`` restores only its own buffer; object arrays still go through the
    restricted unpickler item by item)."""
    from numpy._core import multiarray
    numeric = [type(np.dtype(t)) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
                                           np.uint16, np.uint32, np.uint64, np.float16, np.float32,
                                           np.float64, np.complex64, np.complex128)]
    return [multiarray._reconstruct, (multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
            np.ndarray, np.dtype, *numeric]


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


def load(path: str | os.PathLike[str], map_location: Any = "cpu", trusted: bool = False) -> Any:
    """Load a checkpoint written by :func:`save` (or any ``torch.save`` file), without running code.

    Args:
        path: the file.
        map_location: where tensors go (default CPU).
        trusted: unpickle arbitrary Python objects. Such a file can run any code while it loads:
            only for files the user made and says so (``--trusted``). Default: tensors, plain
            containers, numbers, strings and NumPy arrays of numbers only.

    Raises:
        CheckpointError: the file is missing, empty, truncated or not a torch checkpoint, or
            (without ``trusted``) it asks for other Python objects; the message names the file,
            the reason and, for the latter, the objects.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    try:
        if trusted:  # the one place a file may run code: the user passed --trusted
            return torch.load(path, map_location=map_location, weights_only=False)
        with torch.serialization.safe_globals(_numpy_array_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if not trusted:
            refused = _refused_globals(path)
            if refused:
                shown = ", ".join(refused[:8]) + (f" and {len(refused) - 8} more" if len(refused) > 8 else "")
                raise CheckpointError(
                    f"{path}: refused: besides tensors it holds pickled Python objects ({shown}); "
                    "unpickling them could run any code, so they are not loaded (checkpoints and "
                    "trunks written by facelib hold only tensors and plain values)") from None
        raise CheckpointError(f"{path}: not a readable torch checkpoint (corrupt, or not written by "
                              f"torch.save): {_first_line(e)}") from None
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, ImportError, IndexError,
            KeyError, TypeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not a readable torch checkpoint (truncated or corrupt?): "
                              f"{_first_line(e)}") from None


def resume_state(path: str | os.PathLike[str], resume: bool, trusted: bool = False) -> tuple[str, str | None]:
    """What a run would do with the checkpoint at ``path`` (for dry runs), and why it could not.

    Returns:
        (a description: a new run, or the epoch it would resume from; ``None`` or the problem:
        a checkpoint without ``resume``, one that cannot be read safely). The file is read as
        :func:`load` reads it: nothing in it runs.
    """
    path = Path(path)
    if not path.exists():
        return "none: a new run (no checkpoint)", None
    try:
        state = load(path, trusted=trusted)
    except CheckpointError as e:
        return f"{path} cannot be resumed", str(e)
    epoch = state.get("epoch") if isinstance(state, dict) else None
    if not resume:
        return f"{path} holds a run (epoch {epoch})", f"{path} exists: pass --resume to continue that run"
    return f"from {path} (epoch {epoch} done)", None


def _first_line(e: BaseException) -> str:
    """The reason in an exception's message, without torch's advice on loading the file anyway."""
    text = str(e)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
        text = text.split("Check the documentation of torch.load", 1)[0]
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0][:200]}" if lines else type(e).__name__


def _refused_globals(path: Path) -> list[str]:
    """The Python objects a checkpoint's pickle asks for beyond what :func:`load` allows."""
    allowed = {"numpy.ndarray", "numpy.dtype", "numpy._core.multiarray._reconstruct",
               "numpy.core.multiarray._reconstruct", "collections.OrderedDict"}
    if zipfile.is_zipfile(path):
        try:
            with torch.serialization.safe_globals(_numpy_array_globals()):
                names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:
            names = pickle_globals(path)
    else:  # torch's legacy format or a bare pickle: torch's own names are its tensor rebuilders
        names = [n for n in pickle_globals(path) if not n.startswith("torch.")]
    return sorted({n for n in names if n not in allowed})


_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING",
               "BINSTRING", "STRING"}


def pickle_globals(path: str | os.PathLike[str]) -> list[str]:
    """The ``module.name`` of every global (class, function) the pickles in a file ask for.

    Read from the opcode stream with :mod:`pickletools`, never by unpickling: nothing runs. A
    torch zip archive's ``data.pkl`` members are read; any other file as a sequence of pickles
    (torch's legacy format) up to the first bytes that are not one.
    """
    path = Path(path)
    streams: list[bytes] = []
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            streams = [z.read(n) for n in z.namelist() if n.endswith(".pkl")]
    else:
        streams = [path.read_bytes()]
    found: list[str] = []
    for data in streams:
        f = io.BytesIO(data)
        while f.tell() < len(data):
            start = f.tell()
            memo: dict[int, Any] = {}
            stack: list[Any] = []
            try:
                for op, arg, _ in pickletools.genops(f):
                    name = op.name
                    if name in ("GLOBAL", "INST"):
                        found.append(str(arg).replace(" ", "."))
                        stack.append(None)
                    elif name == "STACK_GLOBAL":
                        mod, attr = (stack[-2], stack[-1]) if len(stack) >= 2 else (None, None)
                        found.append(f"{mod}.{attr}" if isinstance(mod, str) and isinstance(attr, str)
                                     else "<a global whose name is computed>")
                        stack.append(None)
                    elif name in _STRING_OPS:
                        stack.append(arg.decode("latin-1") if isinstance(arg, bytes) else arg)
                    elif name == "MEMOIZE":
                        memo[len(memo)] = stack[-1] if stack else None
                    elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                        memo[int(arg)] = stack[-1] if stack else None
                    elif name in ("GET", "BINGET", "LONG_BINGET"):
                        stack.append(memo.get(int(arg)))
                    else:
                        stack.append(None)
            except Exception:  # not (or no longer) a pickle: raw tensor bytes, garbage
                break
            if f.tell() == start:
                break
    return list(dict.fromkeys(found))


def rng_state() -> dict[str, Any]:
    """Every random generator's state: ``python``, ``numpy`` (global), ``torch`` and ``cuda``.

    Tensors and plain values only, so that a checkpoint holding it loads with
    ``torch.load(weights_only=True)``.
    """
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": [int(version), [int(x) for x in internal], gauss],
        "numpy": {"bit_generator": str(np_state["bit_generator"]),
                  "key": torch.from_numpy(np.asarray(np_state["state"]["key"]).astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                  "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured (or the tuples of earlier facelib versions).

    The generator states are byte tensors that must be on the CPU; a checkpoint loaded with
    ``map_location="cuda"`` (how a GPU run resumes) has moved them, so they are moved back.
    """
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(x) for x in internal), gauss))
    np_state = state["numpy"]
    if isinstance(np_state, dict) and "key" in np_state:
        np.random.set_state({
            "bit_generator": np_state["bit_generator"],
            "state": {"key": torch.as_tensor(np_state["key"]).cpu().numpy().astype(np.uint32),
                      "pos": int(np_state["pos"])},
            "has_gauss": int(np_state["has_gauss"]), "gauss": float(np_state["gauss"])})
    else:  # earlier versions: np.random.get_state()'s tuple
        np.random.set_state(np_state)
    torch.set_rng_state(torch.as_tensor(state["torch"]).cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.as_tensor(s).cpu() for s in state["cuda"]])
